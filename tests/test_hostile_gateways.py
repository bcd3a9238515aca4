"""The hostile-gateway zoo: against a gateway that never answers, answers garbage, streams forever,
trickles, resets, ... every lane ends within its deadlines with FAIL or ERROR and the reason, the
report is still written, and the harness neither hangs nor crashes."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.results.stream import read
from harness.world.processes import spawn_ready
from hostile_gateway import MODES

HERE = Path(__file__).resolve().parent
CLAIMS = ["CM-9.1.1", "CM-10.1.1", "CM-10.1.8", "CM-10.2.2", "CM-10.2.10", "CM-10.3.1", "CM-10.4.1", "CM-11.1"]
DEADLINES = {"connect_s": 2, "request_s": 3, "stream_s": 3, "read_s": 2}
LOAD = """name: hostile
description: two streaming users for two seconds
user: StreamUser
users: 2
spawn_rate: 2
duration_s: 2
drain_s: 2
"""


def harness_yaml(tmp_path: Path, port: int, with_load: bool) -> Path:
    (tmp_path / "hostile-load.yaml").write_text(LOAD)
    cfg = {
        "version": 1,
        "target": {"name": "hostile", "url": f"http://127.0.0.1:{port}",   # no key: none is sent
                   "protocols": ["openai_chat", "openai_responses", "anthropic_messages"], "paths": {"health": "/health"}},
        "providers": [{"name": "openai-a", "kind": "openai"}, {"name": "anthropic-a", "kind": "anthropic"}],
        "models": [{"name": "gpt-mock", "provider": "openai-a"}, {"name": "claude-mock", "provider": "anthropic-a"}],
        "deadlines": DEADLINES,
        "gates": [{"metric": "error_rate", "max_rate": 0.01}],
    }
    if with_load:
        cfg["load"] = {"profile": str(tmp_path / "hostile-load.yaml"), "direct": False}
    path = tmp_path / "harness.yaml"
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize("mode", MODES)
def test_every_lane_ends_with_a_reason_and_a_report(tmp_path, mode):
    with_load = mode in ("silent", "streams_forever", "reset", "trickle")
    child, info = spawn_ready("hostile", [sys.executable, str(HERE / "hostile_gateway.py"), mode], tmp_path / "hostile.log", 20)
    try:
        cfg = harness_yaml(tmp_path, info["port"], with_load)
        args = [sys.executable, "-m", "harness", "run", "-c", str(cfg), "-o", str(tmp_path / "out"), "-n", "2", "--no-smoke"]
        for cid in CLAIMS + (["CM-21"] if with_load else []):
            args += ["--only", cid]
        t0 = time.monotonic()
        r = subprocess.run(args, capture_output=True, text=True, timeout=240)
        took = time.monotonic() - t0
    finally:
        child.stop(grace_s=2)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert "Traceback" not in r.stdout + r.stderr
    run = read(tmp_path / "out" / "results.jsonl")
    assert not run.partial
    got = {rec.id: rec for rec in run.records}
    expected = set(CLAIMS) | ({"CM-21.1", "CM-21.2"} if with_load else set())
    assert set(got) == expected, sorted(got)
    for rec in got.values():
        if rec.id == "CM-21.1" and rec.status == "UNSUPPORTED":
            continue   # no run straight at the provider was asked for: buffering cannot be compared
        assert rec.status in ("FAIL", "ERROR"), (mode, rec.id, rec.status, rec.reason)
        assert rec.reason.strip(), (mode, rec.id)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "**Release gate: BLOCKED**" in md or "**Release gate: NOT CLEARED**" in md
    # Bounded: every exchange ends by its deadline (3 s), whatever the gateway does.
    assert took < 150, took
