"""The repository lane as a lane of its own: `harness repo` and `harness run` with `repo:` put its
records in the one results stream and its four report kinds (claims x tests beside the black-box
verdicts, source matrix, lane matrix, test summary) in report.md/html and junit.xml."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import JUnitXml, Skipped

from harness.results.stream import read

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "repo_py"


def test_harness_repo_writes_the_four_report_kinds(tmp_path):
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "harness", "repo", str(FIXTURE), "--plan", str(FIXTURE / "PLAN.md"),
                        "--mapping", str(FIXTURE / "claims-map.yaml"), "-o", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr      # coverage gaps are reported, they are no gateway finding
    run = read(out / "results.jsonl")
    assert {rec.lane for rec in run.records} == {"Repository"} and len(run.records) == 16
    assert all(rec.id.startswith("team:GW-") for rec in run.records)          # the team's namespace
    coverage = {rec.evidence["coverage"] for rec in run.records}
    assert coverage == {"COVERED", "PARTIAL", "MISSING"}
    assert [sum(rec.evidence["coverage"] == s for rec in run.records) for s in ("COVERED", "PARTIAL", "MISSING")] == [5, 5, 6]
    assert {a["name"] for a in run.artifacts} == {"claims", "inventory", "lane_matrix", "test_summary", "source_matrix_python"}
    md = (out / "report.md").read_text()
    for heading in ("## The team's claims: tested in the repository, and at runtime", "## Source-to-test matrix (python)",
                    "## Lane matrix", "## Test summary"):
        assert heading in md, heading
    assert "| `gw/telemetry.py` | 5 | 5 | 0.0% | zero | none |" in md
    assert "**over-mocked**: `tests/unit/test_telemetry.py` / `gw/telemetry.py`" in md
    assert "| Unit | 12 | 10 | 1 | 1 | - | 3: team:GW-2.3, team:GW-5.1, team:GW-5.2 |" in md
    assert "**Skipped** (1): needs a shared Redis" in md
    assert "| team:GW-3.2 | `test_entry_expires_after_ttl` | PARTIAL | mapped test failing" in md
    assert "## Counts" in md and "| 1. Auth |" not in md     # no harness claim ran: none is listed
    (suite,) = list(JUnitXml.fromfile(str(out / "junit.xml")))
    assert suite.name == "Repository" and suite.tests == 16 and suite.failures == 0
    assert sum(1 for c in suite if c.result and isinstance(c.result[0], Skipped)) == 11   # PARTIAL and MISSING: no pass
    html = (out / "report.html").read_text()
    assert 'id="repo-claims"' in html and 'id="repo-source_matrix_python"' in html and 'href="#repo-lanes"' in html


def test_a_bad_plan_stops_the_run_before_anything_starts(tmp_path):
    plan = tmp_path / "PLAN.md"
    plan.write_text("| id | test |\n|---|---|\n| GW-1 | test_x |\n| GW-1 | test_y |\n")
    r = subprocess.run([sys.executable, "-m", "harness", "repo", str(FIXTURE), "--plan", str(plan), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and str(plan) in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "o" / "results.jsonl").exists()


@pytest.mark.e2e
def test_team_claims_sit_beside_the_black_box_verdicts_of_a_real_gateway(tmp_path):
    """harness.yaml with `repo:`: the team's plan names harness checks; the same run judges them
    black-box through LiteLLM, and the report puts both side by side."""
    targets = Path(__file__).resolve().parent.parent / "harness" / "targets"
    (tmp_path / "litellm.yaml.j2").write_text((targets / "litellm.yaml.j2").read_text())
    plan = tmp_path / "PLAN.md"
    plan.write_text("## Auth\n\n| id | test name | claim | risk | wave | check | params |\n|---|---|---|---|---|---|---|\n"
                    "| GW-1 | `test_missing_key_refused` | A request without a key is refused | security | P0 | auth.refused | {case: missing} |\n"
                    "| GW-2 | `test_cheapest_healthy_provider_wins` | The cheapest provider wins | revenue | P1 | | |\n")
    cfg = tmp_path / "h.yaml"
    import yaml
    data = yaml.safe_load((targets / "litellm.yaml").read_text())
    data.pop("load"), data.pop("smoke")   # this run is about the claims and the repository
    data["repo"] = {"path": str(FIXTURE), "plan": str(plan)}
    cfg.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "harness", "run", "-c", str(cfg), "-o", str(out), "--only", "CM-1.1",
                        "--only", "team", "-n", "1"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 1, r.stdout + r.stderr       # LiteLLM answers a missing key with a 500 (CM-1.1)
    results = json.loads((out / "results.json").read_text())
    by_id = {c["id"]: c for c in results["claims"] if c["status"] != "NOT RUN"}
    assert set(by_id) == {"CM-1.1", "team:GW-1", "team:GW-2"}
    assert by_id["team:GW-1"]["evidence"]["coverage"] == "MISSING"
    assert by_id["team:GW-2"]["evidence"]["coverage"] == "PARTIAL" and "mapped only by name" in by_id["team:GW-2"]["reason"]
    md = (out / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| team:GW-1 |"))
    assert "MISSING" in row and "CM-1.1 FAIL" in row       # not tested in the repository, and broken at runtime
