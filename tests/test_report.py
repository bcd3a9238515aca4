"""The gap report from a results JSON: counts, heatmap, gaps by risk, waves; secrets never leak."""
from __future__ import annotations

import json
import subprocess
import sys

from harness.report.build import context, write_reports
from harness.secrets import Redactor


def claim(cid, status, section="10.1 Chat", risk="conformance", wave="P1", check="x.y", reason="why"):
    return {"id": cid, "test": f"test_{cid.replace('-', '_').replace('.', '_').lower()}", "claim": f"claim {cid}",
            "risk": risk, "wave": wave, "check": check, "params": {}, "section": section, "lane": "Conformance",
            "status": status, "reason": reason, "evidence": {"k": "v"}, "duration_s": 0.1}


RESULTS = {
    "harness_version": "0.1.0", "started_at": 1000.0, "finished_at": 1010.0, "target": {"name": "gw"},
    "claims": [claim("CM-10.1.1", "PASS"), claim("CM-10.1.2", "FAIL", risk="revenue", wave="P0", reason="usage | off"),
               claim("CM-10.1.3", "SAFE", risk="reliability"), claim("CM-9.1.1", "UNSUPPORTED", section="9. Catalog")],
}
RESULTS["catalog"] = [{k: v for k, v in c.items() if k not in ("status", "reason", "evidence", "duration_s")}
                      for c in RESULTS["claims"]] + [
    {**claim("CM-9.1.2", "", section="9. Catalog", check=None), "check": None},
    {**claim("CM-9.1.3", "", section="9. Catalog")}]


def test_context_counts_and_heatmap():
    ctx = context(RESULTS)
    c = ctx["counts"]
    assert (c["PASS"], c["FAIL"], c["SAFE"], c["UNSUPPORTED"], c["MISSING"], c["NOT RUN"]) == (1, 1, 1, 1, 1, 1)
    assert ctx["total"] == 6 and ctx["verified"] == 3
    chat = next(h for h in ctx["heat"] if h["section"] == "10.1 Chat")
    assert chat["total"] == 3 and round(chat["verified_pct"]) == 100 and round(chat["conforming_pct"]) == 33
    risks = dict(ctx["gaps"])
    assert [r["id"] for r in risks["Revenue risk"]] == ["CM-10.1.2"]
    assert [r["id"] for r in risks["Reliability risk"]] == ["CM-10.1.3"]   # SAFE is a gap, not a pass
    waves = dict(ctx["waves"])
    assert [r["id"] for r in waves["Wave 1: P0"]] == ["CM-10.1.2"]


def test_markdown_and_html(tmp_path):
    summary = write_reports(RESULTS, tmp_path)
    assert summary["PASS"] == 1 and summary["FAIL"] == 1
    md = (tmp_path / "report.md").read_text()
    assert "| 10.1 Chat | Conformance | 3 | 1 | 1 | 1 |" in md
    assert "usage \\| off" in md          # pipes escaped inside table cells
    assert "### REVENUE RISK" in md and "**Wave 1: P0**" in md
    html = (tmp_path / "report.html").read_text()
    assert 'id="CM-10.1.2"' in html and "<details>" in html and 'class="FAIL"' in html


def test_html_escapes_gateway_content(tmp_path):
    evil = json.loads(json.dumps(RESULTS))
    evil["claims"][1]["reason"] = "<script>alert(1)</script>"
    write_reports(evil, tmp_path)
    assert "<script>alert(1)" not in (tmp_path / "report.html").read_text()


def test_redactor_removes_known_and_key_like_secrets():
    r = Redactor(["sk-harness-0123456789abcdef"])
    data = {"a": "key sk-harness-0123456789abcdef here", "headers": {"Authorization": "Bearer xyz-secret-token"},
            "b": ["Bearer sk-unregistered-abcdefgh"]}
    out = json.dumps(r.data(data))
    assert "0123456789abcdef" not in out and "xyz-secret-token" not in out and "unregistered-abcdefgh" not in out


def test_report_command_rerenders(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    r = subprocess.run([sys.executable, "-m", "harness", "report", str(tmp_path / "results.json")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and (tmp_path / "report.html").exists() and "FAIL 1" in r.stdout
