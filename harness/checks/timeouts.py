"""Timeouts: a slow provider ends in an error or a failover within the promise, never a hang."""
from __future__ import annotations

from harness.checks.base import CheckContext, Deviation, Unsupported, Verdict, check
from harness.checks.failover import not_2xx, trail
from harness.oracles import openai_stream as os_

SLACK_S = 1.5   # scheduling and process start-up noise on a shared 2-core machine


def _promise(ctx: CheckContext) -> float:
    t = ctx.cfg.promises.request_timeout_s
    if not t:
        raise Unsupported("the gateway promises no request timeout (promises.request_timeout_s)")
    return t


def _slow_model(ctx: CheckContext) -> tuple[float, str, list[str], str]:
    """The promised timeout, the model for slow-provider checks, its fallback chain, a fresh tag."""
    timeout = _promise(ctx)
    model = ctx.role("timeout")
    return timeout, model, ctx.cfg.promises.fallbacks.get(model, []), ctx.tag()


def _bound(ctx: CheckContext, timeout: float) -> float:
    p = ctx.cfg.promises
    return p.total_deadline_s or timeout * (1 + p.retries.count) * (1 + len(p.fallbacks.get(ctx.role("timeout"), [])))


@check("timeouts.slow_provider")
def slow_provider(ctx: CheckContext) -> Verdict:
    """Headers later than the timeout: an error or a failover, within the bound, measured."""
    timeout, model, chain, tag = _slow_model(ctx)
    ctx.provider_of(model).script(tag=tag, headers_delay_ms=(timeout * 3 + 5) * 1000)
    bound = _bound(ctx, timeout) + SLACK_S
    ex = ctx.chat(model, tag, deadline_s=bound + 10)
    entries = ctx.attempts(tag, [model] + chain)
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries), "bound_s": bound}
    if ex.error:
        raise Deviation(f"the caller got no answer: {ex.error}", evidence)
    if ex.elapsed_s > bound:
        raise Deviation(f"answered after {ex.elapsed_s:.1f}s; a {timeout}s timeout promises <= {bound:.1f}s", evidence)
    what = "failed over" if ex.status == 200 else f"HTTP {ex.status}"
    return Verdict("PASS", f"{what} after {ex.elapsed_s:.1f}s (bound {bound:.1f}s)", evidence)


@check("timeouts.within_timeout_succeeds")
def within_timeout(ctx: CheckContext) -> Verdict:
    """The other side of the boundary: a provider slower than usual but inside the timeout is waited for."""
    timeout, model, chain, tag = _slow_model(ctx)
    ctx.provider_of(model).script(tag=tag, headers_delay_ms=timeout * 400)   # 40% of the timeout
    ex = ctx.chat(model, tag)
    entries = ctx.attempts(tag, [model] + chain)
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries)}
    if why := not_2xx(ex):
        raise Deviation(why, evidence)
    providers = {e["provider"] for e in entries}
    if providers != {ctx.provider_of(model).name} or len(entries) != 1:
        raise Deviation(f"a provider inside the timeout was abandoned: attempts {trail(entries)}", evidence)
    return Verdict("PASS", f"waited {ex.elapsed_s:.1f}s for a provider inside the {timeout}s timeout", evidence)


@check("timeouts.stream_stall")
def stream_stall(ctx: CheckContext, close: bool = False) -> Verdict:
    """A stream that stalls mid-way is ended within the stream timeout and never passed off as complete."""
    st = ctx.cfg.promises.stream_timeout_s
    if not st:
        raise Unsupported("the gateway promises no stream timeout (promises.stream_timeout_s)")
    model = ctx.role("timeout")
    tag = ctx.tag()
    ctx.provider_of(model).script(tag=tag, stall_after_chunks=4, stall_ms=(st * 3 + 5) * 1000,
                                  close_after_stall=close)
    bound = st + SLACK_S + ctx.cfg.promises.retries.count * st
    ex = ctx.chat(model, tag, stream=True, deadline_s=bound + 15)
    s = os_.parse(ex.events)
    evidence = {"exchange": ex.evidence(), "events": [e.raw.decode("utf-8", "replace") for e in ex.events[:12]],
                "bound_s": bound}
    complete = s.done and os_.finish_reason_value(s) == "stop"
    if complete:
        raise Deviation("a stalled, truncated stream was passed off as complete ([DONE] after finish_reason stop)", evidence)
    if ex.elapsed_s > bound:
        raise Deviation(f"the stalled stream lasted {ex.elapsed_s:.1f}s; the stream timeout is {st}s", evidence)
    return Verdict("PASS", f"the stalled stream was ended after {ex.elapsed_s:.1f}s, not marked complete", evidence)
