"""Test equipment, loaded beside the locustfile (HARNESS_LOAD_LOCUSTFILES): a worker's report on
quit comes 1 s late, where locust's master waits 0.5 s for it. The master must not depend on it:
it has each worker's last figures before it quits (harness/load/locustfile.py, last reports)."""
import time

from locust import events
from locust.runners import STATE_STOPPED, STATE_STOPPING, WorkerRunner

_ENV: list = []


@events.init.add_listener
def _keep(environment, **_):
    _ENV.append(environment)


@events.report_to_master.add_listener
def _late(client_id, data):
    runner = _ENV[0].runner if _ENV else None
    if isinstance(runner, WorkerRunner) and runner.state in (STATE_STOPPING, STATE_STOPPED):
        time.sleep(1.0)   # blocking on purpose: the whole worker is late
