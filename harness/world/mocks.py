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
    child = Child("mock-providers", [sys.executable, "-m", "harness.mocks", json.dumps(spec)],
                  log_path=log_dir / "mock-providers.log", pipe_stdout=True)
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
                    return child, json.loads(line[6:])["ports"]
        elif not child.alive():
            break
    child.stop(grace_s=2)
    raise StartError(f"mock providers did not start within {timeout_s:.0f}s: {child.log_tail(5) or 'no output'}")
