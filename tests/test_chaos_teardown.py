"""No scenario leaves a toxic, a proxy or a port behind, even when the run is interrupted mid-fault.

The fault proxy plays a user's own Toxiproxy server (chaos.toxiproxy_url): it outlives the run,
so whatever the harness forgot to clean up would still be visible there afterwards.
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from harness.config import EMBEDDED_DEFAULT
from harness.world.fault_proxy import start_fault_proxy
from harness.world.processes import port_is_open

pytestmark = pytest.mark.e2e


@pytest.fixture
def external_toxiproxy(tmp_path):
    child, url = start_fault_proxy(tmp_path, seed=5)
    yield url
    child.stop(grace_s=3)


def config_using(url: str, tmp_path) -> str:
    data = yaml.safe_load(EMBEDDED_DEFAULT.read_text())
    data["chaos"]["toxiproxy_url"] = url
    shutil.copy(EMBEDDED_DEFAULT.parent / data["target"]["start"]["config_template"], tmp_path)
    path = tmp_path / "harness.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def leftovers(url: str) -> tuple[list[str], list[str]]:
    proxies = httpx.get(f"{url}/proxies", timeout=5).json()
    toxics = [f"{n}/{t['name']}" for n, p in proxies.items() for t in p["toxics"]]
    return [n for n in proxies if n.startswith("harness-")], toxics


def test_interrupted_chaos_run_cleans_the_shared_server(external_toxiproxy, tmp_path):
    cfg = config_using(external_toxiproxy, tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "--config", cfg, "-o", str(tmp_path / "out"),
                             "--only", "CM-19.1", "-n", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, seen = time.monotonic() + 180, False
        while time.monotonic() < deadline and proc.poll() is None:
            names, toxics = leftovers(external_toxiproxy)
            if toxics:
                seen = True
                break
            time.sleep(0.1)
        assert seen, "the scenario's toxic never showed up on the server"
        proc.send_signal(signal.SIGINT)      # in the middle of the fault
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-2000:]
    assert leftovers(external_toxiproxy) == ([], []), out[-2000:]
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)(?!\d)(?! \(refuses)", out)]
    assert ports and not [p for p in ports if port_is_open("127.0.0.1", p)]


def test_finished_chaos_run_cleans_the_shared_server(external_toxiproxy, tmp_path):
    cfg = config_using(external_toxiproxy, tmp_path)
    r = subprocess.run([sys.executable, "-m", "harness", "run", "--config", cfg, "-o", str(tmp_path / "out"),
                        "--only", "CM-20.4", "-n", "0"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert leftovers(external_toxiproxy) == ([], [])
