"""The repository lane's verdict records: one per claim of the team's plan, in the one Record shape
every lane produces. COVERED is PASS (the team has a passing test for the claim), PARTIAL and
MISSING keep their names; the evidence keeps the lane's own word, the tests and the suggestions."""
from __future__ import annotations

from harness.repo.claims import COVERED, MISSING, PARTIAL, ClaimCoverage, ClaimMap
from harness.results.record import Record, Status

LANE = "Repository"
STATUS = {COVERED: Status.PASS, PARTIAL: Status.PARTIAL, MISSING: Status.MISSING}


def records(claims: ClaimMap) -> list[Record]:
    return [record(c) for c in claims.claims]


def record(c: ClaimCoverage) -> Record:
    claim = c.claim
    return Record(
        id=claim.id, lane=LANE, section=claim.section, status=STATUS[c.status], reason=c.reason,
        claim=claim.claim, test=claim.test or claim.local_id, risk=claim.risk, wave=claim.wave,
        evidence={"coverage": c.status, "how": c.how, "tests": c.tests, "outcomes": c.outcomes,
                  "suggestions": [s.to_json() for s in c.suggestions], "module": claim.module,
                  "lane": c.lane, "plan": claim.where, "local_id": claim.local_id,
                  # a harness check that also judges the claim black-box (the runner's to schedule)
                  "harness_check": claim.check, "harness_params": claim.params})
