"""The verdict record every lane produces, and the one enum of statuses.

A record is what a lane knows about one claim (or smoke cell, or load gate) once it is judged.
Outputs (terminal, results.json, junit.xml, report.md/html) only ever read records.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, Optional


class Status(str, Enum):
    """str-valued, so a record's status compares equal to (and serialises as) its plain name."""
    PASS = "PASS"                # verified, conforming
    FAIL = "FAIL"                # verified, deviating: fix the gateway
    SAFE = "SAFE"                # promise not kept, but failed cleanly within a bound
    PARTIAL = "PARTIAL"          # only part of the promise could be verified
    UNSUPPORTED = "UNSUPPORTED"  # not promised or not configured: declare it in promises: to test it
    MISSING = "MISSING"          # no automated check yet
    ERROR = "ERROR"              # not judged: the check could not reach a verdict
    NOT_RUN = "NOT RUN"          # deselected, or never reached (an interrupted run)

    def __str__(self) -> str:
        return self.value


ORDER = tuple(Status)
VERIFIED = (Status.PASS, Status.FAIL, Status.SAFE)   # a check reached a verdict about the gateway
BROKEN = (Status.FAIL, Status.SAFE)                   # the promise was not kept


@dataclass
class Record:
    id: str                      # unique in a run: CM-10.2.7, SMOKE-gpt-4o/openai_chat/stream, a team's
    lane: str                    # Conformance, Resilience, Chaos, Load, Smoke, Repository ...
    section: str
    status: Status
    reason: str
    claim: str = ""              # the promise, in one sentence
    test: str = ""               # a stable test name (JUnit case name)
    risk: str = "conformance"
    wave: str = "P2"
    check: Optional[str] = None
    params: dict[str, Any] = field(default_factory=dict)
    group: Optional[str] = None
    evidence: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    started_at: Optional[float] = None   # wall clock (time.time()), to find the gateway's log lines of the check
    finished_at: Optional[float] = None
    owner: Optional[str] = None          # planning fields, from the claim
    impact: Optional[str] = None
    issue: Optional[str] = None
    waiver: Optional[dict[str, Any]] = None   # set when a waiver covers this record (see waivers.py)

    def __post_init__(self) -> None:
        self.status = Status(self.status)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Record":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def waived(self) -> bool:
        return bool(self.waiver and self.waiver.get("active"))


def natural_key(rid: str) -> tuple:
    """CM-2.10 after CM-2.9, letters before numbers never compared with them."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-/:\[\]]+", rid) if p)
