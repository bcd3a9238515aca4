"""Starts the mock providers in a process of their own and waits for their READY line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.config import ProviderCfg
from harness.world.processes import Child, StartError, port_is_open, spawn_ready


def start_mocks(providers: list[ProviderCfg], log_dir: Path, seed: int = 0,
                timeout_s: float = 20) -> tuple[Child, dict[str, int]]:
    for p in providers:   # a fixed port someone else holds: say which, before the mocks fail on it
        if p.port and port_is_open("127.0.0.1", p.port):
            raise StartError(f"provider {p.name!r}: port {p.port} (providers[].port) is already in use on 127.0.0.1")
    spec = {"providers": [{"name": p.name, "kind": p.kind, "port": p.port, "models": p.models,
                           "seed": seed + i} for i, p in enumerate(providers)]}
    child, ready = spawn_ready("mock-providers", [sys.executable, "-m", "harness.mocks", json.dumps(spec)],
                               log_dir / "mock-providers.log", timeout_s)
    return child, ready["ports"]
