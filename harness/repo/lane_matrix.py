"""The gap matrix by lane (report 000): for Unit, Integration, E2E, Chaos, Perf, Security and Docs,
the tests there now, how many were added since a git ref, and what remains: the plan's claims of
that lane that are MISSING. Derived from the inventory, the claim map and git; nothing typed in."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Optional

from harness.repo import gitref
from harness.repo.claims import MISSING, ClaimMap
from harness.repo.inventory import Inventory, scan
from harness.repo.lanes import LANES, lane_of_test


def lane_matrix(inv: Inventory, claims: Optional[ClaimMap] = None, *, repo: Optional[Path] = None,
                since: Optional[str] = None) -> dict[str, Any]:
    """`since`: a git ref of `repo`; the tests its source defined are compared with the working
    tree's (both read statically, so a parametrised case or a dynamic subtest is never "added")."""
    added: dict[str, list[str]] = {lane: [] for lane in LANES}
    if since is not None:
        if repo is None:
            raise ValueError("counting tests added since a ref needs the repository")
        before = {t.id for t in gitref.tests_at(repo, since)}
        for t in scan(repo):
            if t.id not in before:
                added[lane_of_test(t)].append(t.id)
    counts = {lane: Counter() for lane in LANES}
    for t in inv.tests:
        counts.setdefault(t.lane, Counter())[t.outcome or "not run"] += 1
    remaining: dict[str, list[dict[str, Any]]] = {lane: [] for lane in LANES}
    for c in (claims.claims if claims else []):
        if c.status == MISSING:
            remaining.setdefault(c.lane, []).append({"id": c.claim.id, "test": c.claim.test, "claim": c.claim.claim,
                                                     "wave": c.claim.wave, "risk": c.claim.risk})
    return {"since": since, "lanes": [
        {"lane": lane, "tests": sum(counts[lane].values()), "passed": counts[lane]["passed"],
         "failed": counts[lane]["failed"] + counts[lane]["error"], "skipped": counts[lane]["skipped"],
         "added": len(added[lane]) if since is not None else None, "added_tests": added[lane],
         "remaining": len(remaining[lane]), "remaining_claims": remaining[lane]}
        for lane in LANES]}
