"""The repository lane on a real, small Go module (tests/fixtures/repo_go, standard library only):
go test -json and -coverprofile run for real with the machine's Go, in a copy; the inventory, the
per-package coverage, the over-mocked package and the claims of its CSV plan come out exactly."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.repo import analyse, go_available

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "repo_go"
P = "example.com/gwgo"

pytestmark = pytest.mark.skipif(not go_available(), reason="no `go` on PATH: the Go fixture needs a Go toolchain")


@pytest.fixture(scope="module")
def lane(tmp_path_factory):
    repo = tmp_path_factory.mktemp("team") / "repo_go"
    shutil.copytree(FIXTURE, repo)
    return analyse(repo, repo.parent / "out", plan=repo / "PLAN.csv", langs=["go"], timeout_s=300)


def test_inventory_ids_outcomes_and_messages(lane):
    run = lane.runs["go"]
    assert run.returncode == 1          # the planted failing test
    assert run.listing == {f"{P}/breaker": ["TestBreakerOpensAfterThreeFailures", "TestBreakerHalfOpenProbe",
                                            "TestBreakerClosesAfterSuccess"],
                           f"{P}/refunds": [], f"{P}/router": ["TestCheapest", "TestQualifiedKeepsProvider"],
                           f"{P}/telemetry": ["TestEmitWritesOneLine"]}
    items = {t.id: (t.outcome, t.file, t.category) for t in lane.inventory.tests}
    assert items == {
        f"{P}/breaker.TestBreakerOpensAfterThreeFailures": ("passed", "breaker/breaker_test.go", f"{P}/breaker"),
        f"{P}/breaker.TestBreakerHalfOpenProbe": ("skipped", "breaker/breaker_test.go", f"{P}/breaker"),
        f"{P}/breaker.TestBreakerClosesAfterSuccess": ("failed", "breaker/breaker_test.go", f"{P}/breaker"),
        f"{P}/router.TestCheapest": ("passed", "router/router_test.go", f"{P}/router"),
        f"{P}/router.TestCheapest/GO-1.1_cheapest_healthy_wins": ("passed", "router/router_test.go", f"{P}/router"),
        f"{P}/router.TestCheapest/none_healthy": ("passed", "router/router_test.go", f"{P}/router"),
        f"{P}/router.TestQualifiedKeepsProvider": ("passed", "router/router_test.go", f"{P}/router"),
        f"{P}/telemetry.TestEmitWritesOneLine": ("passed", "telemetry/telemetry_test.go", f"{P}/telemetry"),
    }
    s = lane.summary
    assert (s["total"], s["passed"], s["failed"], s["skipped"]) == (8, 6, 1, 1)
    assert [(f["cause"], f["count"]) for f in s["failures"]] == [("planted failure: Allow() = true after a success", 1)]
    assert s["skips"][0]["reason"] == "needs a controllable clock"


def test_per_package_coverage_and_the_over_mocked_package(lane):
    [matrix] = lane.matrices
    rows = {r.module: (r.statements, r.missed, r.cover, r.tier, r.test_files) for r in matrix.modules}
    assert rows == {
        f"{P}/breaker": (5, 0, 100.0, "complete", ["breaker/breaker_test.go"]),
        f"{P}/refunds": (6, 6, 0.0, "zero", []),
        f"{P}/router": (13, 1, 92.3, "good", ["router/router_test.go"]),
        f"{P}/telemetry": (5, 5, 0.0, "zero", ["telemetry/telemetry_test.go"]),
    }
    assert [(f.module, f.test_file) for f in matrix.over_mocked] == [(f"{P}/telemetry", "telemetry/telemetry_test.go")]


def test_claims_from_a_csv_plan_linked_by_subtest_name_comment_and_name(lane):
    got = {c.claim.local_id: (c.status, c.how, c.tests) for c in lane.claims.claims}
    assert got == {
        "GO-1.1": ("COVERED", "marker", [f"{P}/router.TestCheapest/GO-1.1_cheapest_healthy_wins"]),   # subtest name
        "GO-1.2": ("COVERED", "marker", [f"{P}/router.TestQualifiedKeepsProvider"]),                  # // claim:
        "GO-2.1": ("PARTIAL", "name", [f"{P}/breaker.TestBreakerHalfOpenProbe"]),
        "GO-2.2": ("PARTIAL", "name", [f"{P}/breaker.TestBreakerClosesAfterSuccess"]),
        "GO-3.1": ("MISSING", None, []),
    }
    reasons = {c.claim.local_id: c.reason for c in lane.claims.claims}
    assert "(skipped: needs a controllable clock)" in reasons["GO-2.1"]
    assert "(failed: planted failure: Allow() = true after a success)" in reasons["GO-2.2"]
