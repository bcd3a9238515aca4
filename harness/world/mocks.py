"""Starts the mock providers in a process of their own and waits for their READY line."""
from __future__ import annotations

import json
import select
import sys
import time
from pathlib import Path

from harness.config import ProviderCfg
from harness.world.processes import Child


class StartError(Exception):
    """Something the harness had to start did not come up: a FAIL of the run, not of a claim."""


def start_mocks(providers: list[ProviderCfg], log_dir: Path, seed: int = 0,
                timeout_s: float = 20) -> tuple[Child, dict[str, int]]:
    spec = {"providers": [{"name": p.name, "kind": p.kind, "port": p.port, "models": p.models,
                           "seed": seed + i} for i, p in enumerate(providers)]}
    child, ready = spawn_ready("mock-providers", [sys.executable, "-m", "harness.mocks", json.dumps(spec)],
                               log_dir / "mock-providers.log", timeout_s)
    return child, ready["ports"]


def start_fault_proxy(log_dir: Path, seed: int = 0, timeout_s: float = 20) -> tuple[Child, str]:
    """Our Toxiproxy-compatible fault proxy on a free loopback port; returns it and its API URL."""
    child, ready = spawn_ready("fault-proxy", [sys.executable, "-m", "harness.chaos", "--port", "0",
                                               "--seed", str(seed)], log_dir / "fault-proxy.log", timeout_s)
    return child, f"http://127.0.0.1:{ready['port']}"


def spawn_ready(name: str, argv: list[str], log_path: Path, timeout_s: float) -> tuple[Child, dict]:
    """Starts a child that prints `READY {json}` once it listens; returns it and that JSON."""
    child = Child(name, argv, log_path=log_path, pipe_stdout=True)
    assert child.proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    buf = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.proc.stdout], [], [], 0.2)
        if ready:
            chunk = child.proc.stdout.read1(4096)  # type: ignore[union-attr]
            if not chunk:
                break
            buf += chunk
            for line in buf.splitlines():
                if line.startswith(b"READY "):
                    return child, json.loads(line[6:])
        elif not child.alive():
            break
    child.stop(grace_s=2)
    raise StartError(f"{name} did not start within {timeout_s:.0f}s: {child.log_tail(5) or 'no output'}")
