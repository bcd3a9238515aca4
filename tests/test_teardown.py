"""Ctrl-C (and SIGTERM) during a run stop every process and port the harness opened."""
from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.world.processes import port_is_open

pytestmark = pytest.mark.e2e


# Signals land at random points of the claims lane (the seed is in the test id, to replay one).
POINTS = [(signal.SIGINT, random.Random(seed).uniform(0.5, 25.0), seed) for seed in (11, 29)] + [
    (signal.SIGTERM, random.Random(seed).uniform(0.5, 25.0), seed) for seed in (7, 42)]


@pytest.mark.parametrize("sig,delay,seed", POINTS, ids=[f"{s.name}-after-{d:.1f}s-seed{n}" for s, d, n in POINTS])
def test_interrupted_run_leaves_nothing_behind(tmp_path, sig, delay, seed):
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "-o", str(tmp_path), "-n", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children: list = []
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
        time.sleep(delay)   # somewhere in the claims lane
        import psutil
        children = psutil.Process(proc.pid).children(recursive=True)   # mocks, fault proxy, gateway, workers
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
    still = [p for p in ports if port_is_open("127.0.0.1", p)]
    assert not still, (_listeners(still), out[-2000:])
    pids = [int(p) for p in re.findall(r"\(pid (\d+)\)", out)]
    assert len(pids) == 2 and not [p for p in pids if _alive(p)], out[-2000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [c for c in children if _alive(c.pid)]:
        time.sleep(0.2)
    assert len(children) >= 3 and not [c.pid for c in children if _alive(c.pid)], [c.cmdline() for c in children]
    # Every verdict reached is kept, and the report says the run was cut short.
    md = (tmp_path / "report.md").read_text()
    assert "**Partial run**: interrupted" in md and (tmp_path / "results.jsonl").exists()
    assert "interrupted:" in out and "verdicts were reached and kept" in out


def _listeners(ports: list[int]) -> dict[int, list[str]]:
    """Who listens on these ports now (pid, parent and command line): a child of the run left behind,
    or another test's process that took a freed port."""
    import psutil
    found: dict[int, list[str]] = {}
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in ports:
            try:
                proc = psutil.Process(c.pid) if c.pid else None
                who = f"pid {c.pid} (parent {proc.ppid()}): {' '.join(proc.cmdline())[:200]}" if proc else "pid unknown"
            except psutil.Error as exc:
                who = f"pid {c.pid}: {type(exc).__name__}"
            found.setdefault(c.laddr.port, []).append(who)
    return found


def _is_locust(p) -> bool:
    """A short-lived child may end (or be a zombie) between the listing and this look at it."""
    import psutil
    try:
        return "locust" in " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone in all but name; only a running process counts.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_interrupt_during_the_load_lane_stops_locust_too(tmp_path):
    """Ctrl-C while locust is generating load (worker processes included): the run exits 130 and
    no locust process, mock or gateway outlives it."""
    import psutil
    cfg = tmp_path / "h.yaml"
    targets = Path(__file__).resolve().parent.parent / "harness" / "targets"
    (tmp_path / "litellm.yaml.j2").write_text((targets / "litellm.yaml.j2").read_text())
    embedded = (targets / "litellm.yaml").read_text()
    import yaml
    data = yaml.safe_load(embedded)
    data["load"] = {"profile": "soak", "workers": 2}   # long enough to be interrupted, with worker processes
    cfg.write_text(yaml.safe_dump(data))
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "--config", str(cfg), "-o", str(tmp_path / "out"),
                             "--only", "CM-21", "-n", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, seen = "", []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not seen:
            line = proc.stdout.readline()
            out += line
            if not line:
                break
            if "harness: load: " in line:   # the load lane started
                until = time.monotonic() + 30
                while time.monotonic() < until and len(seen) < 3:   # locust master and its 2 workers
                    seen = [p for p in psutil.Process(proc.pid).children(recursive=True) if _is_locust(p)]
                    time.sleep(0.3)
        assert len(seen) >= 3, out
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        out += rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-2000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [p for p in seen if _alive(p.pid)]:
        time.sleep(0.2)
    assert not [p.pid for p in seen if _alive(p.pid)], out[-2000:]
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)(?!\d)(?! \(refuses)", out)]
    assert ports and not [p for p in ports if port_is_open("127.0.0.1", p)], out[-2000:]


def test_interrupt_during_the_smoke_matrix_leaves_nothing_behind(tmp_path):
    """Ctrl-C while `harness smoke` sends its cells: exit 130, the gateway and every mock provider
    stopped, their ports closed."""
    import psutil
    proc = subprocess.Popen([sys.executable, "-m", "harness", "smoke", "-o", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, children = "", []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            out += line
            if "gateway ready at" in line or not line:
                break
        assert "gateway ready at" in out, out
        children = psutil.Process(proc.pid).children(recursive=True)
        ports = sorted({c.laddr.port for p in children for c in p.net_connections("tcp")
                        if c.status == psutil.CONN_LISTEN})
        assert len(children) >= 2 and len(ports) >= 2, (children, ports)
        time.sleep(1.0)   # cells are being sent
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        out += rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-2000:]
    assert "Traceback" not in out
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [p for p in children if _alive(p.pid)]:
        time.sleep(0.2)
    assert not [p.pid for p in children if _alive(p.pid)], out[-2000:]
    assert not [p for p in ports if port_is_open("127.0.0.1", p)], out[-2000:]
