"""Test equipment: a locustfile that starves the load generator of its own event loop. Loaded
beside harness/load/locustfile.py (HARNESS_LOAD_LOCUSTFILES), it spawns in each generator process
a greenlet that spins for STARVE_MS at a time without yielding, so every user and the lag probe
wait behind it, as they would on a generator without CPU to spare."""
from __future__ import annotations

import json
import os
import time

import gevent
from locust import events

STARVE_MS = float(os.environ.get("HARNESS_TEST_STARVE_MS", "300"))


def _spin(until: float) -> None:
    while time.perf_counter() < until:   # bounded: the run's window and drain
        end = time.perf_counter() + STARVE_MS / 1000
        while time.perf_counter() < end:
            pass   # no yield: the whole process waits
        gevent.sleep(0.005)


@events.test_start.add_listener
def _starve(environment, **_: object) -> None:
    spec = json.loads(os.environ.get("HARNESS_LOAD_SPEC", "{}"))
    gevent.spawn(_spin, time.perf_counter() + float(spec.get("duration_s", 10)) + float(spec.get("drain_s", 10)))
