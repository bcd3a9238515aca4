"""Each run's results.jsonl kept per target (`--history DIR`, default beside the output), and what
changed since the previous complete run of the same target.

A status that changed while neither the gateway's version nor the catalog changed is *flaky*: the
harness (or the gateway's timing) gave two answers to one question."""
from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any, Optional

from harness.results.record import BROKEN, VERIFIED, Status
from harness.results.stream import Run, read

KEEP = 50        # runs kept per target
TREND = 10       # runs shown per claim in the HTML


def _target_dir(history: Path, target: str) -> Path:
    return history / re.sub(r"[^A-Za-z0-9_.-]+", "_", target or "gateway")


def previous_runs(history: Path, target: str) -> list[Run]:
    """Earlier runs of this target, oldest first (unreadable files are skipped, never fatal)."""
    runs = []
    for f in sorted(_target_dir(history, target).glob("*.jsonl")):
        try:
            runs.append(read(f))
        except (OSError, ValueError):
            continue
    return runs


def save(history: Path, run: Run, source: Path) -> Path:
    where = _target_dir(history, run.meta.get("target", {}).get("name", ""))
    where.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.fromtimestamp(run.meta.get("started_at", 0), dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
    dest = where / f"{stamp}.jsonl"
    shutil.copyfile(source, dest)
    for old in sorted(where.glob("*.jsonl"))[:-KEEP]:
        old.unlink(missing_ok=True)
    return dest


def _same_world(a: Run, b: Run) -> bool:
    return (a.meta.get("catalog_digest") == b.meta.get("catalog_digest")
            and a.meta.get("gateway", {}).get("version") == b.meta.get("gateway", {}).get("version"))


def changes(current: Run, before: list[Run]) -> Optional[dict[str, Any]]:
    """New findings, fixed, flaky, newly covered and other changes against the last complete run
    of the same target; None when there is none to compare with."""
    prev = next((r for r in reversed(before) if not r.partial), None)
    if prev is None:
        return None
    same = _same_world(current, prev)
    was = {r.id: r.status for r in prev.records}
    out: dict[str, list[dict[str, Any]]] = {"new_findings": [], "fixed": [], "flaky": [], "newly_covered": [],
                                            "changed": []}
    for r in current.records:
        old = was.get(r.id)
        new = r.status
        if old == new or new == Status.NOT_RUN or old == Status.NOT_RUN:
            continue
        entry = {"id": r.id, "from": str(old) if old else "absent", "to": str(new), "reason": r.reason}
        if old in VERIFIED and new in VERIFIED and same:
            out["flaky"].append(entry)
        elif new in BROKEN and old not in BROKEN:
            out["new_findings"].append(entry)
        elif old in BROKEN and new == Status.PASS:
            out["fixed"].append(entry)
        elif new in VERIFIED and old not in VERIFIED:
            out["newly_covered"].append(entry)
        elif same and old is not None:
            out["flaky"].append(entry)
        else:
            out["changed"].append(entry)
    return {"previous": {"started_at": prev.meta.get("started_at"),
                         "gateway_version": prev.meta.get("gateway", {}).get("version"),
                         "catalog_digest": prev.meta.get("catalog_digest")},
            "same_gateway_and_catalog": same, **out,
            "none": not any(out.values())}


def trend(current: Run, before: list[Run], n: int = TREND) -> dict[str, list[str]]:
    """Each record's status over the last n runs (oldest first, the current one last)."""
    runs = [*before[-(n - 1):], current] if n > 1 else [current]
    ids = [r.id for r in current.records]
    table = [{r.id: str(r.status) for r in run.records} for run in runs]
    return {i: [t.get(i, "") for t in table] for i in ids}
