"""The gateway under the harness, measured: a Python gateway the harness starts runs under
coverage.py with a context per lane and per claim, and the report shows which modules the lanes
reach and which claims reach which modules."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.world.gateway_coverage import matrix, prepare, switch, wrap
from harness.world.processes import StartError

# A stand-in for a Python gateway: a package whose two functions run, each while the harness's
# context is the one it names; it says READY once coverage and the harness's plugin are loaded.
FAKE_GATEWAY = {
    "fakegw/__init__.py": "def claim_a():\n    return 'a'\n\n\ndef claim_b():\n    return 'b'\n",
    "run_fakegw.py": """import sys, time
from pathlib import Path
import fakegw
print("READY", flush=True)
label_file = Path(sys.argv[1])
for _ in range(2000):   # bounded: 20 s at most
    label = label_file.read_text() if label_file.exists() else ""
    if label == "CM-A":
        fakegw.claim_a()
    elif label == "CM-B":
        fakegw.claim_b()
    time.sleep(0.01)
""",
}


def test_only_python_gateways_are_wrapped(tmp_path):
    rc = tmp_path / ".coveragerc"
    script = tmp_path / "gw"
    script.write_text("#!/usr/bin/env python3\nprint('hi')\n")
    assert wrap([str(script), "--port", "1"], rc)[-3:] == [str(script), "--port", "1"]
    assert wrap(["/usr/bin/python3", "-m", "gw.app", "--x"], rc)[-4:] == ["--rcfile=" + str(rc), "-m", "gw.app", "--x"]
    assert wrap(["/usr/bin/python3", "app.py"], rc)[-1] == "app.py"
    binary = tmp_path / "server"
    binary.write_bytes(b"\x7fELF\x02\x01")
    with pytest.raises(StartError, match="not a Python program"):
        wrap([str(binary), "-config", "x.yaml"], rc)


def test_an_external_gateway_cannot_be_measured(tmp_path):
    cfg = tmp_path / "h.yaml"
    cfg.write_text("version: 1\ntarget: {name: ext, url: 'http://127.0.0.1:9'}\n"
                   "providers: [{name: p, kind: openai}]\nmodels: [{name: m, provider: p}]\n")
    r = subprocess.run([sys.executable, "-m", "harness", "run", "-c", str(cfg), "--gateway-coverage", "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "target.coverage: --gateway-coverage needs a gateway the harness starts" in r.stderr


@pytest.mark.e2e
def test_litellm_under_coverage_shows_which_claims_reach_which_modules(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "harness", "run", "--gateway-coverage", "--only", "CM-1.1", "--only", "CM-10.1.1",
                        "--no-load", "--no-smoke", "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr           # CM-1.1 is a LiteLLM finding
    results = json.loads((out / "results.json").read_text())
    assert results["options"]["workers"] == "1" and results["options"]["gateway_coverage"]   # one claim at a time
    (artifact,) = [a for a in json.loads("[" + ",".join(
        line for line in (out / "results.jsonl").read_text().splitlines() if '"type": "artifact"' in line) + "]")
        if a["lane"] == "Gateway"]
    g = artifact["data"]
    assert g["modules_reached"] > 100 and 0 < g["total"]["cover"] < 100
    rows = {m["module"]: m for m in g["modules"]}
    auth = rows["litellm/proxy/auth/user_api_key_auth.py"]
    assert "CM-1.1" in auth["claims"] and "Resilience" in auth["lanes"]
    assert "CM-10.1.1" in rows["litellm/proxy/proxy_server.py"]["claims"]
    assert "Conformance" in rows["litellm/proxy/proxy_server.py"]["lanes"]
    assert set(g["claims"]) == {"CM-1.1", "CM-10.1.1"}
    md = (out / "report.md").read_text()
    assert "## The gateway's own source, as the lanes reached it (coverage.py)" in md
    assert "| `litellm/proxy/proxy_server.py` |" in md


@pytest.mark.parametrize("end", ["SIGKILL", "SIGTERM"])
def test_what_ran_before_the_last_switch_survives_the_gateway_being_killed(tmp_path, end):
    """The process claims kill the gateway with SIGKILL, which coverage.py cannot catch: what was
    measured up to the harness's last context switch must be on disk all the same. It is, because
    coverage.py's switch_context flushes what it measured to its SQLite data file (7.x's
    Collector.switch_context); this holds the harness to that."""
    for name, text in FAKE_GATEWAY.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    where = tmp_path / "cov"
    rc = prepare(where, ["fakegw"], [])
    argv = wrap([sys.executable, str(tmp_path / "run_fakegw.py"), str(where / "context")], rc)
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    try:
        assert proc.stdout.readline().strip() == "READY"
        assert switch(str(where), proc.pid, "CM-A", timeout_s=10)
        time.sleep(0.3)                                   # claim_a runs, in context CM-A
        assert switch(str(where), proc.pid, "CM-B", timeout_s=10)
        time.sleep(0.3)                                   # claim_b runs; a SIGKILL loses this part
        proc.send_signal(getattr(signal, end))
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    g = matrix(where, {"CM-A": "Conformance", "CM-B": "Process"})
    assert g is not None, "no coverage data at all: everything the gateway ran was lost"
    (row,) = [m for m in g["modules"] if m["module"].endswith("fakegw/__init__.py")]
    assert "CM-A" in row["claims"], row
    if end == "SIGTERM":   # coverage.py's own sigterm handler saves the rest
        assert "CM-B" in row["claims"], row
