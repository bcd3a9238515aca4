"""A silent route (a provider that accepts the request and never answers): how often the gateway
sends it there while the caller waits, and whether it goes on after the caller was answered.
Times are the provider's arrival times (its journal, wall clock) against the caller's."""
from __future__ import annotations

from harness.oracles.common import Violations


def attempts(arrivals: list[float], t_answered: float, timeout_s: float, retries: int, retried: bool) -> Violations:
    """Arrivals at the silent provider up to the caller's answer: at most 1 + the promised timeout
    retries (`retries` if timed-out attempts are `retried`, else none). None at all is no violation:
    the route was not put to the test, which the check reports as not judged (ERROR)."""
    allowed = 1 + (retries if retried else 0)
    got = sum(1 for t in arrivals if t <= t_answered)
    if got > allowed:
        why = f"{retries} timeout retr{'y' if retries == 1 else 'ies'}" if retried else "no retry of a timeout"
        return [f"the silent provider got {got} attempts for one request; a {timeout_s:g}s timeout with {why} "
                f"allows {allowed}"]
    return []


def after_answer(arrivals: list[float], t_answered: float) -> Violations:
    """Arrivals at the silent provider after the caller got its answer (as far as the journal was watched)."""
    late = [round(t - t_answered, 2) for t in arrivals if t > t_answered]
    if late:
        return [f"the silent provider got {len(late)} more attempt(s) {late}s after the caller had its answer: "
                "retries behind the caller's back (billed, and load on a provider already failing)"]
    return []
