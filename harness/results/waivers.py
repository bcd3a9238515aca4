"""Known deviations a team has accepted for a while: a waiver names a record id, says why and until
when. A waived FAIL is still reported (as waived) but does not block the release gate or fail the
run until it expires; an expired waiver is reported as expired and blocks again."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

from harness.config import load_yaml_model
from harness.results.record import Record, Status

WAIVABLE = (Status.FAIL, Status.SAFE, Status.ERROR, Status.PARTIAL)


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)          # a record id (CM-1.2, SMOKE-gpt-4o/openai_chat/plain)
    reason: str = Field(min_length=3)
    expires: dt.date
    issue: Optional[str] = None            # where the fix is tracked
    owner: Optional[str] = None


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    waivers: list[Waiver] = []


def load(path: Path) -> list[dict]:
    """The waivers of a file, as plain dicts for the run's first line (a report rebuilt later
    judges with the same waivers)."""
    return [w.model_dump(mode="json") for w in load_yaml_model(path, WaiverFile, "waivers file").waivers]


def apply(records: list[Record], waivers: list[dict], on: dt.date) -> None:
    """Marks each record a waiver covers: active until its expiry date (inclusive), then expired."""
    by_id = {w["id"]: w for w in waivers}
    for r in records:
        w = by_id.get(r.id)
        if w is None or r.status not in WAIVABLE:
            continue
        expires = dt.date.fromisoformat(str(w["expires"]))
        r.waiver = {**w, "active": on <= expires, "expired": on > expires}
