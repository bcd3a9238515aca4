"""A test summary like report 004: per category (a directory, a Go package, or a lane) the
pass/fail/skip counts and time; failures grouped by root cause (the same normalised message); and
skipped tests with their reasons ("skips"). All of it counted from results, never written by hand."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Union

from harness.repo import messages
from harness.repo.inventory import Inventory
from harness.repo.model import ERROR, FAILED, OUTCOMES, PASSED, SKIPPED, TestResult


def test_summary(tests: Union[Inventory, Iterable[TestResult]], by: str = "category") -> dict[str, Any]:
    """`by`: "category" (directory or package), or "lane" (needs an Inventory)."""
    if isinstance(tests, Inventory):
        pairs = [(t.result, t.lane if by == "lane" else t.result.category) for t in tests.tests if t.result]
    elif by == "lane":
        raise ValueError("a summary by lane needs an Inventory (lanes come from the inventory)")
    else:
        pairs = [(r, r.category) for r in tests]
    results = [r for r, _ in pairs]
    total = Counter(r.outcome for r in results)
    groups: dict[str, list[TestResult]] = {}
    for r, key in pairs:
        groups.setdefault(key, []).append(r)
    return {
        "total": len(results), **{o: total.get(o, 0) for o in OUTCOMES},
        "duration_s": round(sum(r.duration_s for r in results), 3),
        "status": "failed" if total.get(FAILED) or total.get(ERROR) else "passed",
        "by": by,
        "categories": [_row(k, rs) for k, rs in sorted(groups.items())],
        "failures": _causes([r for r in results if r.outcome in (FAILED, ERROR)]),
        "skips": _skips([r for r in results if r.outcome == SKIPPED]),
    }


def _row(key: str, results: list[TestResult]) -> dict[str, Any]:
    c = Counter(r.outcome for r in results)
    ran = len(results) - c.get(SKIPPED, 0)
    return {"category": key, "tests": len(results), **{o: c.get(o, 0) for o in OUTCOMES},
            "duration_s": round(sum(r.duration_s for r in results), 3),
            "pass_rate": round(100.0 * c.get(PASSED, 0) / ran, 1) if ran else None}


def _causes(failed: list[TestResult]) -> list[dict[str, Any]]:
    """Root causes, the most widespread first; a failure without a message is its own cause."""
    causes: dict[str, list[TestResult]] = {}
    for r in failed:
        causes.setdefault(messages.normalise(r.message or r.details) or f"(no message) {r.id}", []).append(r)
    return [{"cause": cause, "count": len(rs), "categories": sorted({r.category for r in rs}),
             "tests": [{"id": r.id, "outcome": r.outcome, "message": r.message} for r in rs]}
            for cause, rs in sorted(causes.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


def _skips(skipped: list[TestResult]) -> list[dict[str, Any]]:
    reasons: dict[str, list[str]] = {}
    for r in skipped:
        reasons.setdefault(r.skip_reason or "(no reason given)", []).append(r.id)
    return [{"reason": reason, "count": len(ids), "tests": ids}
            for reason, ids in sorted(reasons.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


test_summary.__test__ = False   # a report builder, not a test, wherever a test module imports it
