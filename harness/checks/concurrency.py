"""A concurrency limit answered fast: with the promised number of requests in flight on a model, one
more is refused at once (a promised status, within a promised bound), never queued and never sent to
the provider; once the requests in flight end, a new one is served.

The requests in flight are held at the provider (a scripted delay before its headers) for longer
than the refusal's bound, so a gateway that queues the extra request can only answer it late. Each
claim has a model of its own (roles.concurrency), so parallel claims never share slots.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

from harness.checks.base import CheckContext, NotJudged, Unsupported, Verdict, check, judge, poll_until
from harness.client.control import ProviderControl
from harness.client.http import Exchange
from harness.oracles import concurrency as co

SLACK_S = 1.0         # scheduling noise on a shared 2-core machine, added to the promised bound
HOLD_BEYOND_S = 2.0   # the held requests outlast the bound by this much
ARRIVAL_S = 10.0      # how long the held requests may take to reach the provider
SETTLE_S = 0.5        # after the held ones end: time for a late-forwarded request to reach the journal
DEADLINE_S = 20.0     # each request's own deadline, beyond the hold
ARRIVAL_POLL_S = 0.05  # between two looks at the provider's journal while the held requests arrive
RETRY_EVERY_S = 0.2   # served_after: the pause between tries while a slot may still be on its way back


def _outcome(ex: Exchange) -> str:
    return f"error: {ex.error}" if ex.error else f"HTTP {ex.status} after {ex.elapsed_s:.1f}s"


def _await_arrivals(provider: ProviderControl, tag: str, futures: list[Future], n: int) -> bool:
    """True once `n` held requests are at the provider; False if one ended first or they took too long."""
    arrived = poll_until(lambda: len(provider.journal(tag=tag)),
                         lambda k: k >= n or any(f.done() for f in futures), ARRIVAL_S, ARRIVAL_POLL_S)
    return arrived.last >= n


@check("concurrency.limit")
def limit(ctx: CheckContext, aspect: Literal["refused_fast", "not_forwarded", "served_after"], slot: int) -> Verdict:
    """aspect: refused_fast (the request over the cap is refused as promised, within the bound, and the
    ones within it are served), not_forwarded (it never reaches the provider), served_after (once the
    held ones end, a new request is served)."""
    c = ctx.cfg.promises.concurrency
    if c is None:
        raise Unsupported("the gateway promises no limit on requests in flight (promises.concurrency)")
    model = ctx.slot("concurrency", slot)
    provider = ctx.provider_of(model)
    n, bound = c.max_in_flight, c.answered_within_s + SLACK_S
    hold_s = bound + HOLD_BEYOND_S
    held_tag, over_tag = ctx.tag(), ctx.tag()
    provider.script(tag=held_tag, headers_delay_ms=hold_s * 1000)
    evidence: dict[str, Any] = {"max_in_flight": n, "hold_s": hold_s, "bound_s": bound, "statuses": c.statuses}
    try:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="in-flight") as pool:
            futures = [pool.submit(ctx.chat, model, held_tag, prompt=f"Hold me, request {i}.", deadline_s=hold_s + DEADLINE_S)
                       for i in range(n)]
            arrived = _await_arrivals(provider, held_tag, futures, n)
            over = ctx.chat(model, over_tag, prompt="One too many.", deadline_s=hold_s + DEADLINE_S) if arrived else None
            held = [f.result() for f in futures]   # each bounded by its own deadline
            t_ended = time.monotonic()
    finally:
        provider.clear_script(held_tag)
    evidence["held"] = [_outcome(ex) for ex in held]
    answers = [(ex.status, ex.error) for ex in held]
    held_problems = co.within_limit(answers, n)
    if timeouts := co.timed_out(answers):
        # The gateway's upstream timeout ended the hold, not the cap: whatever the request over the cap
        # got, it met fewer than n requests in flight, so no aspect can be judged.
        t = ctx.cfg.promises.request_timeout_s
        why = (f" (promises.request_timeout_s is {t:g}s)" if t and hold_s >= t else "")
        raise NotJudged(f"not judged: {len(timeouts)} of the {n} requests held in flight came back as upstream "
                        f"timeouts ({'; '.join(evidence['held'])}): the gateway's upstream timeout on {model} is "
                        f"shorter than the {hold_s:g}s hold{why}; the check needs it longer (the refusal bound "
                        f"answered_within_s + {SLACK_S + HOLD_BEYOND_S:g}s)", evidence)
    if over is None:
        if held_problems and aspect == "refused_fast":
            return judge(held_problems, evidence, "")
        raise NotJudged(f"not judged: {len(provider.journal(tag=held_tag))} of the {n} requests the limit allows "
                        f"were in flight at the provider within {ARRIVAL_S:.0f}s ({'; '.join(evidence['held'])})",
                        evidence)
    evidence["over"] = over.evidence()
    if aspect == "refused_fast":
        return judge(held_problems + co.refusal(over.status, over.error, over.elapsed_s, c.statuses, bound, n),
                     evidence, f"with {n} in flight the next request was refused with HTTP {over.status} after "
                               f"{over.elapsed_s:.2f}s (bound {bound:.1f}s); the {n} were served")
    if held_problems:
        raise NotJudged(f"not judged: {held_problems[0]}", evidence)
    if aspect == "not_forwarded":
        time.sleep(SETTLE_S)
        arrivals = len(provider.journal(tag=over_tag))
        evidence["over_arrivals"] = arrivals
        return judge(co.not_forwarded(arrivals), evidence,
                     f"the request over the limit ({_outcome(over)}) never reached the provider")
    # A gateway may give a slot back a moment after its answer went out (a post-response hook): a
    # refusal then is tried again, each try on a tag of its own, for as long as the refusal's bound
    # from when the held answers came back; a slot still taken after that was not freed.
    def attempt() -> tuple[str, Exchange]:
        tag = ctx.tag()
        return tag, ctx.chat(model, tag, prompt="A slot is free now.", deadline_s=DEADLINE_S)

    def not_refused(tried: tuple[str, Exchange]) -> bool:   # served, or failed otherwise: judged below
        ex = tried[1]
        return bool(ex.error) or ex.status is None or 200 <= ex.status < 300
    polled = poll_until(attempt, not_refused, bound, RETRY_EVERY_S, since=t_ended)
    tries = [ex for _, ex in polled.results]
    after_tag, after = polled.last
    waited_s = polled.waited_s   # from when the held answers came back (since=t_ended)
    arrivals = len(provider.journal(tag=after_tag))
    evidence.update(after=after.evidence(), after_arrivals=arrivals, after_tries=[_outcome(ex) for ex in tries],
                    after_waited_s=waited_s)
    return judge(co.served_after(after.status, after.error, arrivals, len(tries), waited_s), evidence,
                 f"once the {n} requests in flight had ended, a new one was served ({_outcome(after)}"
                 + (f", on try {len(tries)}, {waited_s:.1f}s after they ended)" if len(tries) > 1 else ")"))
