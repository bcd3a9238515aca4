"""Retries on the same provider: how many, how spaced, and what a silent provider costs."""
from __future__ import annotations

import time

from harness.checks.base import CheckContext, Deviation, Unsupported, Verdict, check, judge
from harness.checks.failover import fail_primary, not_2xx, trail


def _retry_model(ctx: CheckContext) -> tuple[str, list[str]]:
    model = ctx.role("retry")
    return model, ctx.cfg.promises.fallbacks.get(model, [])


@check("retries.count")
def count(ctx: CheckContext, status: int) -> Verdict:
    """A provider failing with `status` gets 1 + the promised retries if `status` is retried, else 1."""
    model, chain = _retry_model(ctx)
    r = ctx.cfg.promises.retries
    want = 1 + (r.count if status in r.on_status else 0)
    tag = ctx.tag()
    fail_primary(ctx, model, tag, status)
    ex = ctx.chat(model, tag)
    primary = ctx.provider_of(model).name
    entries = ctx.attempts(tag, [model] + chain)
    got = sum(1 for e in entries if e["provider"] == primary)
    return judge([] if got == want else [f"the provider got {got} attempt(s) for a {status}, promised {want}"],
                 {"exchange": ex.evidence(), "attempts": trail(entries)}, f"{got} attempt(s) on {status}, as promised")


@check("retries.recovers")
def recovers(ctx: CheckContext) -> Verdict:
    """A provider failing once then healthy: with retries promised the caller gets the retried answer."""
    model, chain = _retry_model(ctx)
    r = ctx.cfg.promises.retries
    if r.count < 1 or 503 not in r.on_status:
        raise Unsupported("the gateway promises no retry of a 503")
    tag = ctx.tag()
    fail_primary(ctx, model, tag, 503, times=1)
    ex = ctx.chat(model, tag)
    entries = ctx.attempts(tag, [model] + chain)
    primary = ctx.provider_of(model).name
    providers = [e["provider"] for e in entries]
    violations = [] if providers == [primary, primary] else [f"attempts went to {providers}, expected a retry on {primary}"]
    if why := not_2xx(ex):
        violations.append(why)
    return judge(violations, {"exchange": ex.evidence(), "attempts": trail(entries)}, "the retry answered")


@check("retries.backoff")
def backoff(ctx: CheckContext) -> Verdict:
    r = ctx.cfg.promises.retries
    if r.backoff_min_s is None or r.count < 1:
        raise Unsupported("the gateway promises no backoff between retries (promises.retries.backoff_min_s)")
    model, chain = _retry_model(ctx)
    tag = ctx.tag()
    fail_primary(ctx, model, tag, 503)
    ex = ctx.chat(model, tag)
    primary = ctx.provider_of(model).name
    entries = [e for e in ctx.attempts(tag, [model] + chain) if e["provider"] == primary]
    gaps = [b["t_received"] - a["t_received"] for a, b in zip(entries, entries[1:])]
    short = [round(g, 3) for g in gaps if g < r.backoff_min_s * 0.95]
    violations = [f"retries came {short}s apart, promised at least {r.backoff_min_s}s"] if short else []
    if not gaps:
        violations.append("there was no retry to measure")
    return judge(violations, {"exchange": ex.evidence(), "attempts": trail(entries)},
                 f"retries spaced {[round(g, 2) for g in gaps]}s")


@check("retries.honors_retry_after")
def honors_retry_after(ctx: CheckContext) -> Verdict:
    r = ctx.cfg.promises.retries
    if not r.honors_retry_after:
        raise Unsupported("the gateway does not promise to honour Retry-After")
    model, chain = _retry_model(ctx)
    wait = min(1.0, r.max_retry_after_s)
    tag = ctx.tag()
    ctx.provider_of(model).script(tag=tag, status=429, times=1, headers={"Retry-After": f"{wait:g}"},
                                  body={"error": {"message": "slow down", "type": "rate_limit_error"}})
    ex = ctx.chat(model, tag)
    entries = ctx.attempts(tag, [model] + chain)
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries)}
    if len(entries) < 2:
        raise Deviation("no second attempt after the 429 to measure", evidence)
    gap = entries[1]["t_received"] - entries[0]["t_received"]
    return judge([] if gap >= wait * 0.95 else [f"the next attempt came {gap:.3f}s after a 429 with Retry-After: {wait:g}"],
                 evidence, f"the next attempt waited {gap:.2f}s >= Retry-After {wait:g}s")


@check("retries.no_hammering")
def no_hammering(ctx: CheckContext) -> Verdict:
    """A provider failing persistently gets no more attempts than retries and the chain allow."""
    model, chain = _retry_model(ctx)
    r = ctx.cfg.promises.retries
    tag = ctx.tag()
    for m in [model] + chain:
        fail_primary(ctx, m, tag, 503)
    t0 = time.monotonic()
    ex = ctx.chat(model, tag)
    entries = ctx.attempts(tag, [model] + chain)
    bound = (1 + r.count) * (1 + len(chain))
    return judge([] if len(entries) <= bound else [f"{len(entries)} upstream attempts in {time.monotonic() - t0:.1f}s "
                                                  f"for one request; the promise allows at most {bound}"],
                 {"exchange": ex.evidence(), "attempts": trail(entries)},
                 f"{len(entries)} attempt(s) <= {bound} for one request")


@check("retries.silent_provider_deadline")
def silent_provider_deadline(ctx: CheckContext) -> Verdict:
    """A provider that never answers costs the caller at most the promised total deadline."""
    p = ctx.cfg.promises
    if not p.total_deadline_s:
        raise Unsupported("the gateway promises no total deadline (promises.total_deadline_s)")
    model = ctx.role("timeout")
    chain = p.fallbacks.get(model, [])
    tag = ctx.tag()
    ctx.provider_of(model).script(tag=tag, headers_delay_ms=(p.total_deadline_s + 10) * 1000)
    ex = ctx.chat(model, tag, deadline_s=p.total_deadline_s * 2 + 5)
    entries = ctx.attempts(tag, [model] + chain)
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries)}
    slack = 1.0
    if ex.elapsed_s > p.total_deadline_s + slack:
        raise Deviation(f"a silent provider cost {ex.elapsed_s:.1f}s, promised at most {p.total_deadline_s}s", evidence)
    if ex.error:
        raise Deviation(f"no clean answer within the deadline: {ex.error}", evidence)
    return Verdict("PASS", f"answered HTTP {ex.status} after {ex.elapsed_s:.1f}s (promised <= {p.total_deadline_s}s)", evidence)
