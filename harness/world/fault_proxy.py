"""Starts the embedded fault proxy (harness.chaos) in a process of its own."""
from __future__ import annotations

import sys
from pathlib import Path

from harness.world.processes import Child, spawn_ready


def start_fault_proxy(log_dir: Path, seed: int = 0, timeout_s: float = 20) -> tuple[Child, str]:
    """Our Toxiproxy-compatible fault proxy on a free loopback port; returns it and its API URL."""
    child, ready = spawn_ready("fault-proxy", [sys.executable, "-m", "harness.chaos", "--port", "0",
                                               "--seed", str(seed)], log_dir / "fault-proxy.log", timeout_s)
    return child, f"http://127.0.0.1:{ready['port']}"
