"""The results stream against a real LiteLLM: a run killed with SIGKILL halfway loses no verdict it
had reached, and `harness report --from` renders a report marked partial from what is there."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from harness.results.stream import read

@pytest.mark.e2e
def test_sigkill_halfway_keeps_every_verdict_and_the_report_says_partial(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "-o", str(out), "--only", "CM-10", "--only", "CM-11",
                             "-n", "1", "--no-load", "--no-smoke", "--history", str(tmp_path / "h")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stream = out / "results.jsonl"
    try:
        deadline = time.monotonic() + 240
        seen = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if stream.exists():
                seen = sum('"type": "record"' in line for line in stream.read_text().splitlines())
                if seen >= 6:
                    break
            time.sleep(0.05)
        assert seen >= 6 and proc.poll() is None, "the run ended before it could be killed halfway"
        proc.send_signal(signal.SIGKILL)   # no handler, no finally: only what was flushed survives
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(line) for line in stream.read_text().splitlines() if line.endswith("}")]
    records = [line for line in lines if line["type"] == "record"]
    assert len(records) >= seen and not any(line["type"] == "end" for line in lines)
    run = read(stream)
    planned = len(run.meta["planned"]["claims"])
    assert run.partial and len(run.records) == len(records) < planned
    r = subprocess.run([sys.executable, "-m", "harness", "report", "--from", str(stream)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "(partial run)" in r.stdout, r.stdout + r.stderr
    md = (out / "report.md").read_text()
    assert "**Partial run**" in md and f"{planned - len(records)} planned claims were never reached" in md
    results = json.loads((out / "results.json").read_text())
    judged = {c["id"]: c["status"] for c in results["claims"] if c["status"] != "NOT RUN"}
    assert judged == {rec["id"]: rec["status"] for rec in records}   # every verdict reached is in the report


def test_a_gateway_that_cannot_start_is_exit_3_with_one_line_and_a_report(tmp_path):
    cfg = tmp_path / "h.yaml"
    cfg.write_text('version: 1\ntarget:\n  name: nobin\n  start: {command: ["/nonexistent/gateway-bin", "{{ port }}"]}\n'
                   "providers: [{name: p, kind: openai}]\nmodels: [{name: m, provider: p}]\n")
    r = subprocess.run([sys.executable, "-m", "harness", "run", "-c", str(cfg), "-o", str(tmp_path / "out"), "--no-load",
                        "--no-smoke", "--only", "CM-10.1.1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stderr.strip() == "harness: error: gateway 'nobin' is not installed: /nonexistent/gateway-bin not found"
    md = (tmp_path / "out" / "report.md").read_text()
    assert "**Release gate: NOT CLEARED**: the world could not be started" in md and "Traceback" not in r.stdout
