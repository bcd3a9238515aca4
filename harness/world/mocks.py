"""Starts the mock providers in a process of their own and waits for their READY line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from harness.config import ProviderCfg
from harness.world.processes import Child, spawn_ready


def start_mocks(providers: list[ProviderCfg], log_dir: Path, seed: int = 0,
                timeout_s: float = 20) -> tuple[Child, dict[str, int]]:
    spec = {"providers": [{"name": p.name, "kind": p.kind, "port": p.port, "models": p.models,
                           "seed": seed + i} for i, p in enumerate(providers)]}
    child, ready = spawn_ready("mock-providers", [sys.executable, "-m", "harness.mocks", json.dumps(spec)],
                               log_dir / "mock-providers.log", timeout_s)
    return child, ready["ports"]
