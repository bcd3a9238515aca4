"""A concurrency limit: the request over the cap is refused at once, never queued, never forwarded;
the requests within the cap are served, and so is the next one once they end."""
from __future__ import annotations

from typing import Optional

from harness.oracles.common import Violations


def within_limit(answers: list[tuple[Optional[int], Optional[str]]], limit: int) -> Violations:
    """The `limit` requests held in flight, each (status, error): a cap of `limit` serves them all."""
    bad = [f"HTTP {s}" if not err else err for s, err in answers if err or s != 200]
    if bad:
        return [f"{len(bad)} of the {limit} requests the limit allows were not served ({'; '.join(bad[:3])}): "
                f"the cap is lower than the promised {limit}"]
    return []


def refusal(status: Optional[int], error: Optional[str], elapsed_s: float, statuses: list[int],
            bound_s: float, limit: int) -> Violations:
    """The request over the cap, sent while `limit` others were held at the provider."""
    if error:
        return [f"the request over the limit of {limit} got no answer ({error}) after {elapsed_s:.1f}s: "
                "it waited for a slot instead of being refused"]
    if status is not None and 200 <= status < 300:
        return [f"the request over the limit of {limit} was served (HTTP {status} after {elapsed_s:.1f}s): "
                "queued for a slot or not limited, not refused"]
    out: Violations = []
    if status not in statuses:
        out.append(f"the request over the limit of {limit} got HTTP {status}, promised one of {statuses}")
    if elapsed_s > bound_s:
        out.append(f"the refusal came after {elapsed_s:.1f}s, promised within {bound_s:.1f}s: "
                   "the request waited before it was refused")
    return out


def not_forwarded(arrivals: int) -> Violations:
    """How often the request over the cap reached the provider (the journal, by its own tag)."""
    if arrivals:
        return [f"the request over the limit reached the provider {arrivals} time(s): the cap did not keep it "
                "from the provider"]
    return []


def served_after(status: Optional[int], error: Optional[str], arrivals: int) -> Violations:
    """A request sent once the held ones ended: a freed slot serves it, from the provider."""
    if error or status != 200:
        return [f"once the requests in flight had ended, a new request got {error or f'HTTP {status}'}: "
                "the slots were not freed"]
    if arrivals != 1:
        return [f"once the requests in flight had ended, a new request reached the provider {arrivals} time(s), "
                "expected once"]
    return []
