"""A concurrency limit: the request over the cap is refused at once, never queued, never forwarded;
the requests within the cap are served, and so is the next one once they end."""
from __future__ import annotations

from typing import Optional

from harness.oracles.common import Violations


# A held request answered 408 (Request Timeout) or 504 (Gateway Timeout) was given up by the gateway's
# own upstream timeout, shorter than the hold: that says nothing of the cap, which refuses at once.
TIMEOUT_STATUSES = (408, 504)


def timed_out(answers: list[tuple[Optional[int], Optional[str]]]) -> list[str]:
    """The held requests, each (status, error), that came back as the gateway's upstream timeout."""
    return [f"HTTP {s}" for s, err in answers if not err and s in TIMEOUT_STATUSES]


def within_limit(answers: list[tuple[Optional[int], Optional[str]]], limit: int) -> Violations:
    """The `limit` requests held in flight, each (status, error): a cap of `limit` serves them all.
    Timeouts are named apart: a gateway that gave up on the held provider did not refuse by its cap."""
    out: Violations = []
    bad = [f"HTTP {s}" if not err else err for s, err in answers
           if (err or s != 200) and not (not err and s in TIMEOUT_STATUSES)]
    if bad:
        out.append(f"{len(bad)} of the {limit} requests the limit allows were not served ({'; '.join(bad[:3])}): "
                   f"the cap is lower than the promised {limit}")
    if timeouts := timed_out(answers):
        out.append(f"{len(timeouts)} of the {limit} requests the limit allows came back as upstream timeouts "
                   f"({'; '.join(timeouts[:3])}): the gateway gave up on the provider while they were held, "
                   "which says nothing of the cap")
    return out


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


def served_after(status: Optional[int], error: Optional[str], arrivals: int, tries: int = 1,
                 waited_s: float = 0.0) -> Violations:
    """A request sent once the held ones ended: a freed slot serves it, from the provider. `status`,
    `error` and `arrivals` are the last of `tries` sent over `waited_s` (a gateway may give a slot
    back a moment after its answer went out)."""
    if error or status != 200:
        tried = f" (the last of {tries} tries over {waited_s:.1f}s)" if tries > 1 else ""
        return [f"once the requests in flight had ended, a new request got {error or f'HTTP {status}'}{tried}: "
                "the slots were not freed"]
    if arrivals != 1:
        return [f"once the requests in flight had ended, a new request reached the provider {arrivals} time(s), "
                "expected once"]
    return []
