"""Claims to tests, and a status per claim.

Links, strongest first:
  marker   the source names the claim: @pytest.mark.claim("X-6.5.1"), `// claim: X-6.5.1` in Go,
           or a Go subtest whose name holds the id (t.Run("X-6.5.1 refunds a 5xx", ...))
  mapping  the mapping file (mapping.py) lists the test for the claim
  name     only the plan's test name resembles a test's (similarity.py, score >= NAME_MATCH)

Status:
  COVERED  a marker or mapping links a test that ran and passed, none of its linked tests failed,
           and (when the claim names its module and per-test coverage is known) a passing linked
           test executes that module
  PARTIAL  with the reason: linked only by name; linked tests skipped, failing, or never run; or
           the linked tests never execute the claim's module
  MISSING  no test; the suggestions (closest names) are listed for a person to confirm
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

from harness.repo.inventory import Inventory
from harness.repo.lanes import lane_of_text
from harness.repo.matrix import SourceMatrix
from harness.repo.model import ERROR, FAILED, PASSED, SKIPPED, TestItem, base_id, id_matches
from harness.repo.plan import Claim
from harness.repo.similarity import NAME_MATCH, Suggestion, suggest

COVERED, PARTIAL, MISSING = "COVERED", "PARTIAL", "MISSING"
STATUSES = (COVERED, PARTIAL, MISSING)


@dataclass
class ClaimCoverage:
    claim: Claim
    status: str
    reason: str
    how: Optional[str] = None               # marker, mapping, name; None when MISSING
    tests: list[str] = field(default_factory=list)             # linked test ids
    outcomes: dict[str, Optional[str]] = field(default_factory=dict)   # test id -> outcome (None: never ran)
    suggestions: list[Suggestion] = field(default_factory=list)
    lane: str = "Unit"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.claim.id, "local_id": self.claim.local_id, "test": self.claim.test,
                "claim": self.claim.claim, "section": self.claim.section, "risk": self.claim.risk,
                "wave": self.claim.wave, "lane": self.lane, "module": self.claim.module, "check": self.claim.check,
                "status": self.status, "reason": self.reason, "how": self.how, "tests": self.tests,
                "outcomes": self.outcomes, "suggestions": [s.to_json() for s in self.suggestions]}


@dataclass
class ClaimMap:
    claims: list[ClaimCoverage]
    unmapped_tests: list[str]                  # tests no claim links (by marker, mapping or name)
    unknown_ids: dict[str, list[str]]          # ids the source names that no claim of the plan has -> tests
    unresolved: dict[str, list[str]]           # mapping entries naming no test of the suite

    def counts(self) -> dict[str, int]:
        c = Counter(x.status for x in self.claims)
        return {s: c.get(s, 0) for s in STATUSES}

    def heatmap(self) -> list[dict[str, Any]]:
        """Per section, in plan order (report 001): total, covered, partial, missing, coverage %."""
        rows: dict[str, Counter] = {}
        for x in self.claims:
            rows.setdefault(x.claim.section, Counter())[x.status] += 1
        return [{"section": s, "total": sum(c.values()), "covered": c[COVERED], "partial": c[PARTIAL],
                 "missing": c[MISSING], "coverage": round(100.0 * c[COVERED] / sum(c.values()), 1)}
                for s, c in rows.items()]

    def to_json(self) -> dict[str, Any]:
        return {"counts": self.counts(), "total": len(self.claims), "heatmap": self.heatmap(),
                "claims": [x.to_json() for x in self.claims], "unmapped_tests": self.unmapped_tests,
                "unknown_ids": self.unknown_ids, "unresolved": self.unresolved}


def map_claims(claims: list[Claim], inv: Inventory, mapping: Optional[dict[str, list[str]]] = None,
               coverage: Optional[SourceMatrix] = None) -> ClaimMap:
    """`mapping`: read_mapping's result; `coverage`: the source matrix, for the "never executes the
    module" check (only a matrix with per-test contexts can say)."""
    mapping = mapping or {}
    tests = inv.tests
    names = {base_id(t.id): t.name for t in tests}
    linked: set[str] = set()
    out = []
    for claim in claims:
        how, items = _confirmed(claim, tests, mapping)
        suggestions = [] if items else suggest(claim.test, sorted(names), names)
        if not items and suggestions and suggestions[0].score >= NAME_MATCH:
            how, items = "name", [t for t in tests if base_id(t.id) == suggestions[0].test]
        linked |= {t.id for t in items}
        status, reason = _judge(claim, how, items, suggestions, mapping.get(claim.id, []), coverage)
        out.append(ClaimCoverage(claim, status, reason, how if items else None, [t.id for t in items],
                                 {t.id: t.outcome for t in items}, suggestions, _lane(claim, items)))
    plan_ids = {c.local_id for c in claims} | {c.id for c in claims}
    unknown: dict[str, list[str]] = {}
    for t in tests:
        for cid in t.claims:
            if cid not in plan_ids:
                unknown.setdefault(cid, []).append(t.id)
    unresolved = {cid: [target for target in targets if not any(id_matches(t.id, target) for t in tests)]
                  for cid, targets in mapping.items()}
    return ClaimMap(out, [t.id for t in tests if t.id not in linked], unknown,
                    {k: v for k, v in unresolved.items() if v})


def _confirmed(claim: Claim, tests: list[TestItem], mapping: dict[str, list[str]]) -> tuple[Optional[str], list[TestItem]]:
    marked = [t for t in tests if claim.local_id in t.claims or claim.id in t.claims or _subtest_names(t, claim)]
    if marked:
        return "marker", marked
    targets = mapping.get(claim.id, [])
    mapped = [t for t in tests if any(id_matches(t.id, target) for target in targets)]
    return ("mapping", mapped) if mapped else (None, [])


def _subtest_names(t: TestItem, claim: Claim) -> bool:
    """A Go subtest (TestX/X-6.5.1_refunds) whose own name holds the claim id, not inside a longer
    id (X-6.5.1 is not in X-6.5.10)."""
    if "::" in t.id or "/" not in t.name:
        return False
    sub = t.name.split("/", 1)[1]
    return re.search(rf"(?<![A-Za-z0-9.]){re.escape(claim.local_id)}(?![A-Za-z0-9]|\.[0-9])", sub) is not None


def _judge(claim: Claim, how: Optional[str], items: list[TestItem], suggestions: list[Suggestion],
           targets: list[str], coverage: Optional[SourceMatrix]) -> tuple[str, str]:
    if not items:
        if targets:
            return MISSING, f"mapped tests not found in the suite: {', '.join(targets)}"
        near = "; closest: " + ", ".join(f"{s.test} ({s.score:.2f})" for s in suggestions) if suggestions else ""
        return MISSING, f"no test{near}"
    by = {o: [t for t in items if t.outcome == o] for o in (PASSED, FAILED, ERROR, SKIPPED, None)}
    if how == "name":
        t = items[0]
        return PARTIAL, (f"mapped only by name ({suggestions[0].score:.2f}): {base_id(t.id)} "
                         f"{_said(t)}; confirm it with a marker or in the mapping file")
    failing = by[FAILED] + by[ERROR]
    if failing:
        t = failing[0]
        return PARTIAL, f"mapped test failing: {t.id}: {t.result.message if t.result else ''}".rstrip(": ")
    if not by[PASSED]:
        if by[SKIPPED]:
            t = by[SKIPPED][0]
            return PARTIAL, f"mapped test skipped: {t.id}: {t.result.skip_reason if t.result else ''}".rstrip(": ")
        return PARTIAL, f"mapped test never ran: {', '.join(t.id for t in items)}"
    if claim.module and coverage is not None:
        executing = coverage.executes(claim.module)
        if executing is not None and not {base_id(t.id) for t in by[PASSED]} & executing:
            return PARTIAL, (f"the mapped test never executes {claim.module}: "
                             f"{', '.join(sorted({base_id(t.id) for t in by[PASSED]}))}")
    passed = sorted({base_id(t.id) for t in by[PASSED]})
    skipped = f" ({len(by[SKIPPED])} more skipped)" if by[SKIPPED] else ""
    return COVERED, f"{how}: {', '.join(passed)} passed{skipped}"


def _said(t: TestItem) -> str:
    if t.outcome is None:
        return "(never ran)"
    if t.outcome == SKIPPED and t.result:
        return f"(skipped: {t.result.skip_reason})"
    if t.outcome in (FAILED, ERROR) and t.result:
        return f"({t.outcome}: {t.result.message})"
    return f"({t.outcome})"


def _lane(claim: Claim, items: list[TestItem]) -> str:
    """The plan's lane; else the lane most of its tests are in; else one its section names; else Unit."""
    if claim.lane:
        return claim.lane
    if items:
        return Counter(t.lane for t in items).most_common(1)[0][0]
    return lane_of_text(claim.section) or "Unit"
