"""What became of a load run's requests, from its counts (no histogram library needed: reports use it)."""
from __future__ import annotations


def tally(counts: dict[str, int]) -> dict[str, int]:
    """What became of the requests of a run: `requests` counts every one that ended (answered or
    failed), `error:<kind>` the failed ones; what was started and never ended (still waiting when
    the drain ran out: a gateway that hangs) is `unfinished`, a failure too."""
    errors = sum(v for k, v in counts.items() if k.startswith("error:"))
    ended = counts.get("requests", 0)
    unfinished = max(0, counts.get("started", ended) - ended)
    return {"completed": ended - errors, "errors": errors, "unfinished": unfinished, "attempted": ended + unfinished}
