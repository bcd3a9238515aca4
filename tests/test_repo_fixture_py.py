"""The repository lane on a real, small Python repository (tests/fixtures/repo_py): its suite runs
for real, in a copy, under coverage with a context per test. Everything the lane says about it is
asserted exactly: claim statuses, per-module figures, the over-mocked test file, the summary."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.repo import analyse
from harness.results.record import Status

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "repo_py"


@pytest.fixture(scope="module")
def lane(tmp_path_factory):
    repo = tmp_path_factory.mktemp("team") / "repo_py"
    shutil.copytree(FIXTURE, repo)
    return analyse(repo, repo.parent / "out", plan=repo / "PLAN.md", mapping=repo / "claims-map.yaml",
                   langs=["python"], timeout_s=300)


def test_the_suite_ran_for_real_with_one_failure_and_one_skip(lane):
    run = lane.runs["python"]
    assert run.returncode == 1                       # the planted failing test
    assert len(run.collection.ids) == 14 and run.collection.errors == []
    s = lane.summary
    assert (s["total"], s["passed"], s["failed"], s["skipped"], s["error"]) == (14, 12, 1, 1, 0)
    assert [(c["category"], c["tests"], c["passed"], c["failed"], c["skipped"]) for c in s["categories"]] == [
        ("tests/integration", 2, 2, 0, 0), ("tests/unit", 12, 10, 1, 1)]
    assert [(f["cause"], f["count"]) for f in s["failures"]] == [("AssertionError: assert 'v' is None", 1)]
    assert s["skips"] == [{"reason": "needs a shared Redis", "count": 1,
                           "tests": ["tests/unit/test_cache.py::test_cache_shared_between_workers"]}]


def test_claim_statuses_exactly(lane):
    claims = lane.claims
    assert claims.counts() == {"COVERED": 5, "PARTIAL": 5, "MISSING": 6}
    got = {c.claim.local_id: (c.status, c.how) for c in claims.claims}
    assert got == {
        "GW-1.1": ("COVERED", "marker"), "GW-1.2": ("COVERED", "marker"), "GW-1.3": ("PARTIAL", "name"),
        "GW-1.4": ("COVERED", "mapping"), "GW-2.1": ("PARTIAL", "name"), "GW-2.2": ("COVERED", "mapping"),
        "GW-2.3": ("MISSING", None), "GW-3.1": ("COVERED", "marker"), "GW-3.2": ("PARTIAL", "marker"),
        "GW-3.3": ("PARTIAL", "marker"), "GW-4.1": ("PARTIAL", "marker"), "GW-5.1": ("MISSING", None),
        "GW-5.2": ("MISSING", None), "GW-6.1": ("MISSING", None), "GW-6.2": ("MISSING", None),
        "GW-7.1": ("MISSING", None)}
    reason = {c.claim.local_id: c.reason for c in claims.claims}
    assert reason["GW-3.2"] == ("mapped test failing: tests/unit/test_cache.py::test_entry_expires_after_ttl: "
                                "AssertionError: assert 'v' is None")
    assert reason["GW-3.3"] == ("mapped test skipped: tests/unit/test_cache.py::test_cache_shared_between_workers: "
                                "needs a shared Redis")
    assert reason["GW-4.1"] == ("the mapped test never executes gw/telemetry.py: "
                                "tests/unit/test_telemetry.py::test_emit_writes_one_line_per_span")
    assert reason["GW-1.3"].startswith("mapped only by name (0.94): tests/unit/test_router.py::test_qualified_route_names_provider")
    assert reason["GW-1.4"] == "mapping: tests/unit/test_router.py::TestSplit::test_split_round_trip passed"
    assert reason["GW-2.3"] == "no test; closest: tests/unit/test_breaker.py::test_breaker_opens_after_three_failures (0.61)"
    assert claims.unknown_ids == {"GW-9.9": ["tests/integration/test_flow.py::test_models_listed_once"]}
    assert claims.unmapped_tests == ["tests/integration/test_flow.py::test_failover_skips_open_breaker",
                                     "tests/integration/test_flow.py::test_models_listed_once",
                                     "tests/unit/test_breaker.py::test_breaker_opens_after_three_failures"]


def test_per_module_figures_and_the_over_mocked_test_file(lane):
    [matrix] = lane.matrices
    assert matrix.contexts
    rows = {r.module: (r.statements, r.missed, r.cover, r.tier, r.test_files) for r in matrix.modules}
    assert rows == {
        "gw/__init__.py": (0, 0, 100.0, "complete", []),
        "gw/breaker.py": (13, 0, 100.0, "complete", ["tests/integration/test_flow.py", "tests/unit/test_breaker.py"]),
        "gw/cache.py": (16, 3, 81.2, "good", ["tests/unit/test_cache.py"]),
        "gw/refunds.py": (8, 8, 0.0, "zero", []),
        "gw/router.py": (15, 1, 93.3, "good", ["tests/integration/test_flow.py", "tests/unit/test_router.py"]),
        "gw/telemetry.py": (5, 5, 0.0, "zero", []),
    }
    # refunds.py is at 0% too, but no test file is named for it: untested, not over-mocked
    assert [(f.test_file, f.module) for f in matrix.over_mocked] == [("tests/unit/test_telemetry.py", "gw/telemetry.py")]
    assert matrix.unattributed == []
    total = matrix.to_json()["total"]
    assert (total["statements"], total["missed"], total["cover"], total["tier"]) == (57, 17, 70.2, "moderate")


def test_lanes_and_records(lane):
    rows = {r["lane"]: r for r in lane.lanes["lanes"]}
    assert {k: (v["tests"], v["remaining"]) for k, v in rows.items() if v["tests"] or v["remaining"]} == {
        "Unit": (12, 3), "Integration": (2, 1), "Chaos": (0, 1), "Security": (0, 1)}
    recs = lane.records()
    assert len(recs) == 16 and {r.lane for r in recs} == {"Repository"}
    assert [r.status for r in recs].count(Status.PASS) == 5
    assert [r.status for r in recs].count(Status.PARTIAL) == 5
    assert [r.status for r in recs].count(Status.MISSING) == 6
    assert set(lane.artifacts()) == {"inventory", "lane_matrix", "test_summary", "source_matrix_python", "claims"}


@pytest.mark.parametrize("args", [
    ["tests/fixtures"],                                                        # a walk from above, as CI's run
    ["-c", "pyproject.toml", "--rootdir", ".", "tests/fixtures/repo_py"],        # the harness's config, named directly
])
def test_the_harness_own_run_collects_nothing_from_the_fixture(args):
    """Its failing and skipped tests are planted; the harness's pytest must never pick them up."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 5, out.stdout[-2000:]          # 5: no tests collected
    assert "::" not in out.stdout
