"""What the reports are built from: the lane matrix (tests added since a git ref, claims remaining
per lane), the test summary (categories, root causes, skips), and the Repository records, written
to and read back from the one results stream."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.config import ConfigError
from harness.repo import import_plan, inventory, lane_matrix, map_claims, read_mapping, records, test_summary
from harness.repo.lanes import lane_of_test
from harness.repo.model import TestItem, TestResult
from harness.results.record import Status
from harness.results.stream import StreamWriter, read

FIXTURE = Path(__file__).parent / "fixtures" / "repo_py"


def _git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                           "-c", "commit.gpgsign=false", *args], cwd=cwd, check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


@pytest.fixture
def history(tmp_path):
    """The fixture repository inside a git checkout's subdirectory, committed in two steps: first
    without the cache tests and the integration tests, then with them."""
    root = tmp_path / "checkout"
    repo = root / "services" / "gw"
    shutil.copytree(FIXTURE, repo)
    later = [repo / "tests" / "unit" / "test_cache.py", repo / "tests" / "integration"]
    held = tmp_path / "held"
    held.mkdir()
    shutil.move(str(later[0]), held / "test_cache.py")
    shutil.move(str(later[1]), held / "integration")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "first")
    first = _git(root, "rev-parse", "HEAD")
    shutil.move(str(held / "test_cache.py"), later[0])
    shutil.move(str(held / "integration"), later[1])
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "second")
    return repo, first


def test_lane_matrix_counts_tests_added_since_a_ref_and_claims_remaining_per_lane(history):
    repo, first = history
    inv = inventory(repo)                       # what the source defines now
    plan = import_plan(repo / "PLAN.md")
    claims = map_claims(plan, inv, read_mapping(repo / "claims-map.yaml", plan))
    lanes = {row["lane"]: row for row in lane_matrix(inv, claims, repo=repo, since=first)["lanes"]}
    assert list(lanes) == ["Unit", "Integration", "E2E", "Chaos", "Perf", "Security", "Docs"]
    assert (lanes["Unit"]["tests"], lanes["Unit"]["added"]) == (11, 3)
    assert sorted(lanes["Unit"]["added_tests"]) == [
        "tests/unit/test_cache.py::test_cache_shared_between_workers",
        "tests/unit/test_cache.py::test_entry_expires_after_ttl", "tests/unit/test_cache.py::test_hit_returns_stored_value"]
    assert (lanes["Integration"]["tests"], lanes["Integration"]["added"]) == (2, 2)
    assert {k: lanes[k]["added"] for k in ("E2E", "Chaos", "Perf", "Security", "Docs")} == dict.fromkeys(
        ("E2E", "Chaos", "Perf", "Security", "Docs"), 0)
    # nothing ran here, so only the claims without any test are MISSING: remaining, in their lanes
    remaining = {k: [c["id"] for c in v["remaining_claims"]] for k, v in lanes.items() if v["remaining"]}
    assert remaining == {"Unit": ["team:GW-2.3", "team:GW-5.1", "team:GW-5.2"], "Integration": ["team:GW-6.2"],
                         "Chaos": ["team:GW-6.1"], "Security": ["team:GW-7.1"]}


def test_lane_matrix_without_a_ref_says_added_is_unknown(history):
    repo, _ = history
    rows = lane_matrix(inventory(repo))["lanes"]
    assert {r["added"] for r in rows} == {None} and {r["remaining"] for r in rows} == {0}


def test_a_ref_that_is_no_commit_is_a_config_error(history):
    repo, _ = history
    with pytest.raises(ConfigError, match="git ref 'no-such-ref': not a commit"):
        lane_matrix(inventory(repo), repo=repo, since="no-such-ref")


@pytest.mark.parametrize("file, name, marks, lane", [
    ("tests/unit/test_router.py", "test_a", [], "Unit"),
    ("tests/test_router.py", "test_a", [], "Unit"),
    ("tests/integration/test_flow.py", "test_a", [], "Integration"),
    ("tests/integration/test_flow.py", "test_a", ["chaos"], "Chaos"),          # a mark outranks the directory
    ("tests/e2e/test_live.py", "test_a", [], "E2E"),
    ("tests/perf/test_fanout.py", "test_a", [], "Perf"),
    ("tests/test_security_headers.py", "test_a", [], "Security"),              # a telling word in the file name
    ("tests/test_load_config.py", "test_a", [], "Unit"),                       # "load" alone says too little
    ("router/router_integration_test.go", "TestPick", [], "Integration"),
    ("router/router_test.go", "TestPick", ["integration"], "Integration"),     # //go:build integration
    ("router/router_test.go", "BenchmarkPick", [], "Perf"),
    ("router/router_test.go", "FuzzParse", [], "Security"),
    ("router/example_test.go", "ExamplePick", [], "Docs"),
    ("docs/test_snippets.py", "test_a", [], "Docs"),
])
def test_lane_conventions(file, name, marks, lane):
    assert lane_of_test(TestItem(f"{file}::{name}", file, name, "", marks=marks)) == lane


def _r(test_id, outcome, category, *, message="", skip="", duration=0.0):
    return TestResult(test_id, test_id.split("::")[-1], test_id.split("::")[0], category, outcome,
                      duration_s=duration, skip_reason=skip, message=message)


RESULTS = [
    _r("tests/unit/test_a.py::test_1", "passed", "tests/unit", duration=0.25),
    _r("tests/unit/test_a.py::test_2", "passed", "tests/unit", duration=0.5),
    _r("tests/integration/test_i.py::test_route", "failed", "tests/integration", duration=1.0,
       message="httpx.HTTPStatusError: 400 Bad Request for url http://127.0.0.1:4123/v1/chat/completions"),
    _r("tests/integration/test_i.py::test_stream", "failed", "tests/integration", duration=2.0,
       message="httpx.HTTPStatusError: 400 Bad Request for url http://127.0.0.1:4999/v1/chat/completions"),
    _r("tests/integration/test_i.py::test_models", "failed", "tests/integration",
       message="AssertionError: Fallback model 'llama-cpp-default' not in model_list"),
    _r("tests/integration/test_i.py::test_health", "error", "tests/integration", message=""),
    _r("tests/integration/test_i.py::test_timeout", "skipped", "tests/integration", skip="requires controlled slow provider"),
    _r("tests/integration/test_i.py::test_limit", "skipped", "tests/integration", skip="requires controlled slow provider"),
    _r("tests/integration/test_i.py::test_destroy", "skipped", "tests/integration"),
]


def test_summary_counts_categories_groups_root_causes_and_skips():
    s = test_summary(RESULTS)
    assert (s["total"], s["passed"], s["failed"], s["skipped"], s["error"], s["status"]) == (9, 2, 3, 3, 1, "failed")
    assert s["duration_s"] == 3.75
    assert s["categories"] == [
        {"category": "tests/integration", "tests": 7, "passed": 0, "failed": 3, "skipped": 3, "error": 1,
         "duration_s": 3.0, "pass_rate": 0.0},
        {"category": "tests/unit", "tests": 2, "passed": 2, "failed": 0, "skipped": 0, "error": 0,
         "duration_s": 0.75, "pass_rate": 100.0}]
    causes = [(c["cause"], c["count"]) for c in s["failures"]]
    # the two HTTP 400s differ only in the port: one cause
    assert causes[0] == ("httpx.HTTPStatusError: 400 Bad Request for url http://127.0.0.1:<port>/v1/chat/completions", 2)
    assert [c for _, c in causes] == [2, 1, 1]
    assert "(no message) tests/integration/test_i.py::test_health" in dict(causes)
    assert s["skips"] == [
        {"reason": "requires controlled slow provider", "count": 2,
         "tests": ["tests/integration/test_i.py::test_timeout", "tests/integration/test_i.py::test_limit"]},
        {"reason": "(no reason given)", "count": 1, "tests": ["tests/integration/test_i.py::test_destroy"]}]


def test_summary_by_lane_needs_and_uses_the_inventory():
    static = [TestItem(r.id, r.file, r.name, r.category) for r in RESULTS]
    s = test_summary(inventory(results=RESULTS, static=static), by="lane")
    assert [(c["category"], c["tests"]) for c in s["categories"]] == [("Integration", 7), ("Unit", 2)]
    with pytest.raises(ValueError, match="needs an Inventory"):
        test_summary(RESULTS, by="lane")
    assert test_summary([])["status"] == "passed"


def test_records_are_repository_verdicts_that_go_through_the_results_stream(tmp_path):
    plan = tmp_path / "plan.md"
    plan.write_text("## Refunds\n\n| id | test | risk | wave | check | params |\n|---|---|---|---|---|---|\n"
                    "| R-1 | test_refund | revenue | P0 | | |\n| R-2 | test_twice | revenue | P1 | | |\n"
                    "| R-3 | test_gone | security | P0 | auth.refused | {case: revoked} |\n")
    static = [TestItem("t.py::test_refund", "t.py", "test_refund", ".", claims=["R-1"]),
              TestItem("t.py::test_twice", "t.py", "test_twice", ".", claims=["R-2"])]
    results = [_r("t.py::test_refund", "passed", "."), _r("t.py::test_twice", "skipped", ".", skip="later")]
    claim_map = map_claims(import_plan(plan), inventory(results=results, static=static))
    recs = records(claim_map)
    assert [(r.id, r.lane, r.status, r.section, r.risk, r.wave, r.test) for r in recs] == [
        ("team:R-1", "Repository", Status.PASS, "Refunds", "revenue", "P0", "test_refund"),
        ("team:R-2", "Repository", Status.PARTIAL, "Refunds", "revenue", "P1", "test_twice"),
        ("team:R-3", "Repository", Status.MISSING, "Refunds", "security", "P0", "test_gone")]
    assert recs[0].evidence["coverage"] == "COVERED" and recs[0].evidence["tests"] == ["t.py::test_refund"]
    assert (recs[2].evidence["harness_check"], recs[2].evidence["harness_params"]) == ("auth.refused", {"case": "revoked"})
    writer = StreamWriter(tmp_path / "results.jsonl")
    for rec in recs:
        writer.record(rec)
    writer.artifact("Repository", "claims", claim_map.to_json())
    writer.end()
    writer.close()
    run = read(tmp_path / "results.jsonl")
    assert [(r.id, r.status) for r in run.records] == [(r.id, r.status) for r in recs]
    assert run.artifacts_of("Repository")[0]["data"]["counts"] == {"COVERED": 1, "PARTIAL": 1, "MISSING": 1}
