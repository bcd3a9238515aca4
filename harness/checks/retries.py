"""Retries on the same provider: how many, how spaced, what a silent provider costs, and how often a
silent route is tried (never behind the caller's back)."""
from __future__ import annotations

import time
from typing import Literal, Union

from harness.checks.base import CheckContext, Deviation, NotJudged, Unsupported, Verdict, check, judge
from harness.checks.failover import answer_problems, fail_primary, trail
from harness.oracles.silent_route import after_answer as silent_after_answer
from harness.oracles.silent_route import attempts as silent_attempts


def _retry_model(ctx: CheckContext) -> tuple[str, list[str]]:
    model = ctx.role("retry")
    return model, ctx.cfg.promises.fallbacks.get(model, [])


@check("retries.count")
def count(ctx: CheckContext, status: int, stream: bool = False) -> Verdict:
    """A provider failing with `status` gets 1 + the promised retries if `status` is retried, else 1
    (`stream`: for a streamed request failing before its first byte)."""
    model, chain = _retry_model(ctx)
    r = ctx.cfg.promises.retries
    want = 1 + (r.count if status in r.on_status else 0)
    tag = ctx.tag()
    fail_primary(ctx, model, tag, status)
    ex = ctx.chat(model, tag, stream=stream)
    primary = ctx.provider_of(model).name
    entries = ctx.attempts(tag, [model] + chain)
    got = sum(1 for e in entries if e["provider"] == primary)
    return judge([] if got == want else [f"the provider got {got} attempt(s) for a {status}, promised {want}"],
                 {"exchange": ex.evidence(), "attempts": trail(entries)}, f"{got} attempt(s) on {status}, as promised")


@check("retries.recovers")
def recovers(ctx: CheckContext, fault: Union[Literal[500, 502, 503], Literal["disconnect"]] = 503,
             stream: bool = False) -> Verdict:
    """A provider failing once (a status, or a connection reset by the provider itself, so the attempt
    is in the journal) then healthy: the caller gets the retried answer, whole. A reset may instead
    be failed over when the policy says so; then the fallback's answer is the rescue."""
    model, chain = _retry_model(ctx)
    r = ctx.cfg.promises.retries
    retried = r.count >= 1 and (r.on_disconnect if fault == "disconnect" else fault in r.on_status)
    fails_over = fault == "disconnect" and bool(chain) and ctx.policy.fails_over(fault)
    if not (retried or fails_over):
        raise Unsupported(f"the gateway promises neither a retry nor a failover on {fault}")
    tag = ctx.tag()
    fail_primary(ctx, model, tag, fault, times=1)
    ex = ctx.chat(model, tag, stream=stream)
    entries = ctx.attempts(tag, [model] + chain)
    primary = ctx.provider_of(model).name
    providers = [e["provider"] for e in entries]
    allowed = ([[primary, primary]] if retried else []) + ([[primary, ctx.provider_of(chain[0]).name]] if fails_over else [])
    violations = [] if providers in allowed else [f"attempts went to {providers}, expected one of {allowed}"]
    violations += answer_problems(ex, entries, stream)
    return judge(violations, {"exchange": ex.evidence(), "attempts": trail(entries)},
                 f"after one {fault} the caller got the {'retried' if providers[-1:] == [primary] else 'failed-over'} answer whole")


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
def no_hammering(ctx: CheckContext, stream: bool = False) -> Verdict:
    """A provider failing persistently gets no more attempts than retries and the chain allow; a
    streamed request then gets a clean error, never a 200 stream that carries nothing."""
    model, chain = _retry_model(ctx)
    r = ctx.cfg.promises.retries
    tag = ctx.tag()
    for m in [model] + chain:
        fail_primary(ctx, m, tag, 503)
    t0 = time.monotonic()
    ex = ctx.chat(model, tag, stream=stream)
    entries = ctx.attempts(tag, [model] + chain)
    bound = (1 + r.count) * (1 + len(chain))
    violations = [] if len(entries) <= bound else [f"{len(entries)} upstream attempts in {time.monotonic() - t0:.1f}s "
                                                   f"for one request; the promise allows at most {bound}"]
    if stream and not ex.error and ex.status is not None and ex.status < 400:
        violations.append(f"every provider failed, yet the caller got HTTP {ex.status} (a stream with "
                          f"{len(ex.events)} event(s)) instead of an error")
    return judge(violations, {"exchange": ex.evidence(), "attempts": trail(entries)},
                 f"{len(entries)} attempt(s) <= {bound} for one request" + (", then a clean error" if stream else ""))


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


WATCH_BEYOND_TIMEOUT_S = 1.0   # after the answer the silent provider is watched one timeout and this long


@check("retries.silent_route")
def silent_route(ctx: CheckContext, aspect: Literal["attempts", "after_answer"]) -> Verdict:
    """A silent route: a provider that accepts the request and never answers (no headers while the
    check watches). attempts: until the caller is answered it gets at most 1 + the promised timeout
    retries; after_answer: once the caller has its answer nothing more reaches it (no retries of the
    silent route behind the caller's back), watched for one more timeout."""
    p = ctx.cfg.promises
    timeout, r = p.request_timeout_s, p.retries
    if not timeout:
        raise Unsupported("the gateway promises no upstream timeout (promises.request_timeout_s): it never gives up "
                          "on a silent route, so no retry of one can be counted")
    if aspect == "attempts" and r.on_timeout is None:
        raise Unsupported("the gateway does not say whether an attempt that timed out is retried "
                          "(promises.retries.on_timeout)")
    model = ctx.role("timeout")
    chain = p.fallbacks.get(model, [])
    bound = p.total_deadline_s or timeout * (1 + r.count) * (1 + len(chain))
    watch_s = timeout + WATCH_BEYOND_TIMEOUT_S
    tag = ctx.tag()
    silent = ctx.provider_of(model)
    silent.script(tag=tag, headers_delay_ms=(bound + watch_s + 10) * 1000)   # silent for longer than watched
    try:
        t_sent = time.time()   # wall clock, as the journal's arrival times
        ex = ctx.chat(model, tag, deadline_s=bound + 10)
        # The caller had its answer when its headers came: the gateway had settled the status then, so
        # an attempt after that can change nothing for the caller. Measured by the client from the
        # request's start, not by reading the clock once the body was read (later, by the body's time).
        answered_s = ex.t_headers_s if ex.t_headers_s is not None else ex.elapsed_s
        t_answered = t_sent + answered_s
        if aspect == "after_answer" and not ex.error:
            time.sleep(watch_s)
        arrivals = [e["t_received"] for e in silent.journal(tag=tag)]
        entries = ctx.attempts(tag, [model] + chain)
    finally:
        silent.clear_script(tag)
    before = [t for t in arrivals if t <= t_answered]
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries), "silent_provider": silent.name,
                "answered_after_s": round(answered_s, 3),
                "silent_arrivals_s": [round(t - t_sent, 3) for t in arrivals],   # from the request's start
                "silent_arrivals_after_answer_s": [round(t - t_answered, 3) for t in arrivals if t > t_answered],
                "watched_s": watch_s}
    if ex.error:
        raise Deviation(f"the caller got no answer from a gateway with a {timeout:g}s upstream timeout: {ex.error}",
                        evidence)
    late = silent_after_answer(arrivals, t_answered) if aspect == "after_answer" else []
    if not before and not late:
        # Nothing was sent down the silent route while the caller waited (the gateway routed the model
        # elsewhere): neither how often it is tried nor whether it is tried behind the caller's back
        # was put to the test, so no verdict; a late arrival alone is still judged (sent behind the back).
        went = sorted({e["provider"] for e in entries})
        raise NotJudged(f"not judged: the request never reached the silent provider {silent.name} before the caller's "
                        f"HTTP {ex.status} after {answered_s:.1f}s (its attempts went to {went or 'no provider watched'}), "
                        "so the silent route was not put to the test", evidence)
    if aspect == "attempts":
        return judge(silent_attempts(arrivals, t_answered, timeout, r.count, bool(r.on_timeout)), evidence,
                     f"the silent provider got {len(before)} attempt(s) before the caller's HTTP {ex.status} "
                     f"after {answered_s:.1f}s (at most {1 + (r.count if r.on_timeout else 0)})")
    return judge(late, evidence,
                 f"nothing reached the silent provider in the {watch_s:g}s after the caller's HTTP {ex.status} "
                 f"(after {answered_s:.1f}s; {len(before)} attempt(s) before it)")
