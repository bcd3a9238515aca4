"""Ctrl-C (and SIGTERM) during a run stop every process and port the harness opened."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from harness.world.processes import port_is_open

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_nothing_behind(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "-o", str(tmp_path), "-n", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, deadline = "", time.monotonic() + 180
    try:
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            out += line
            if "gateway ready at" in line or not line:
                break
        assert "gateway ready at" in out, out
        ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)(?!\d)(?! \(refuses)", out)]
        assert len(ports) >= 4 and all(port_is_open("127.0.0.1", p) for p in ports), out
        time.sleep(1.0)   # let a few claims start
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=60)
        out += rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-2000:]   # interrupted: never a pass
    assert "Traceback" not in out
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(port_is_open("127.0.0.1", p) for p in ports):
        time.sleep(0.2)
    assert not [p for p in ports if port_is_open("127.0.0.1", p)], out[-2000:]
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", out)]
    assert len(pids) == 2 and not [p for p in pids if _alive(p)], out[-2000:]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone in all but name; only a running process counts.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"
