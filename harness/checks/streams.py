"""Odd provider streams: a slow first token, tokens slow but steady, no `data: [DONE]`, a clean end
mid-answer, a malformed event inserted beside the real ones. Each is scripted at the mock provider;
what the caller read is compared with what the provider wrote (the journal)."""
from __future__ import annotations

import time
from typing import Any

from harness.checks.base import PARTIAL, CheckContext, Deviation, Unsupported, Verdict, check, judge, require_2xx
from harness.checks.completeness import provider_answer, shortfall
from harness.checks.failover import stream_problems, trail
from harness.checks.openai_stream import stream_evidence
from harness.oracles import openai_stream as os_

SLACK_S = 1.5          # scheduling noise on a shared 2-core machine
MEASURE_SLACK_MS = 250  # the same, for a first-token overhead measured across two processes


def _stream_timeout(ctx: CheckContext) -> float:
    st = ctx.cfg.promises.stream_timeout_s
    if not st:
        raise Unsupported("the gateway promises no stream timeout (promises.stream_timeout_s)")
    return st


def _complete(s: os_.Stream) -> bool:
    return s.done and os_.finish_reason_value(s) is not None


@check("streams.slow_first_token")
def slow_first_token(ctx: CheckContext, beyond_timeout: bool = False) -> Verdict:
    """The provider's first token comes late. Inside the stream timeout (60% of it) it is waited for and
    the stream arrives whole from that one attempt; beyond it (3x) the caller gets a failover or a clean
    error within the bound, never a hang and never a stream passed off as complete."""
    st = _stream_timeout(ctx)
    model, tag = ctx.role("timeout"), ctx.tag()
    chain = ctx.cfg.promises.fallbacks.get(model, [])
    delay_s = st * 3 + 2 if beyond_timeout else st * 0.6
    ctx.provider_of(model).script(tag=tag, first_token_delay_ms=delay_s * 1000, times=1)
    p = ctx.cfg.promises
    bound = (p.total_deadline_s or st * (1 + p.retries.count) * (1 + len(chain))) + SLACK_S
    ex = ctx.chat(model, tag, stream=True, deadline_s=(delay_s + bound + 10))
    entries = ctx.attempts(tag, [model] + chain)
    s = os_.parse(ex.events)
    evidence = {**stream_evidence(ex), "attempts": trail(entries), "first_token_delay_s": delay_s}
    if not beyond_timeout:
        problems = stream_problems(ex, entries)
        if len(entries) != 1:
            problems.append(f"a provider inside the stream timeout was abandoned: attempts {trail(entries)}")
        return judge(problems, evidence, f"waited {delay_s:.1f}s for the first token; the stream came whole")
    evidence["bound_s"] = bound
    if ex.elapsed_s > bound:
        raise Deviation(f"the caller waited {ex.elapsed_s:.1f}s for a first token that never came in time; "
                        f"the stream timeout is {st}s (bound {bound:.1f}s)", evidence)
    if ex.status == 200 and not ex.error and not stream_problems(ex, entries):
        return Verdict("PASS", f"failed over after {ex.elapsed_s:.1f}s; the stream came whole", evidence)
    if _complete(s):
        raise Deviation("a stream whose first token never came was passed off as complete", evidence)
    return Verdict("PASS", f"ended cleanly after {ex.elapsed_s:.1f}s (HTTP {ex.status}, {ex.error or 'no error text'})",
                   evidence)


@check("streams.ttft_overhead")
def ttft_overhead(ctx: CheckContext) -> Verdict:
    """The first token reaches the caller when the provider sends it (plus the promised overhead),
    not when the stream is over: a gateway that holds a stream back breaks streaming's point."""
    promise = ctx.cfg.promises.ttft_overhead_ms
    if promise is None:
        raise Unsupported("the gateway promises no first-token overhead (promises.ttft_overhead_ms)")
    model, tag = ctx.model("openai"), ctx.tag()
    ctx.provider_of(model).script(tag=tag, first_token_delay_ms=300, token_delay_ms=60, tokens=20)
    wall0 = time.time()
    ex = ctx.chat(model, tag, stream=True)
    require_2xx(ex)
    entry = provider_answer(ctx, tag, [model])
    first = next((e for e in ex.events if os_.text(os_.parse([e]))), None)
    evidence = {**stream_evidence(ex), "provider_first_token_at": entry.get("t_first_token")}
    if first is None or entry.get("t_first_token") is None:
        raise Deviation("no content arrived to time", evidence)
    overhead_ms = (wall0 + first.t - entry["t_first_token"]) * 1000
    allowed = promise + MEASURE_SLACK_MS
    evidence.update(overhead_ms=round(overhead_ms, 1), allowed_ms=allowed)
    return judge([] if overhead_ms <= allowed else
                 [f"the first token reached the caller {overhead_ms:.0f} ms after the provider sent it; promised "
                  f"{promise:g} ms (+{MEASURE_SLACK_MS} ms measuring slack)"],
                 evidence, f"the first token arrived {overhead_ms:.0f} ms after the provider sent it (<= {allowed:g} ms)")


@check("streams.steady_but_slow")
def steady_but_slow(ctx: CheckContext) -> Verdict:
    """Tokens 40% of the stream timeout apart, the whole stream longer than the timeout: the
    timeout bounds silence, not the stream, so the stream is not cut."""
    st = _stream_timeout(ctx)
    model, tag = ctx.role("timeout"), ctx.tag()
    tokens = max(4, int(1.5 / 0.4) + 2)     # ~1.5x the timeout in all
    ctx.provider_of(model).script(tag=tag, tokens=tokens, token_delay_ms=st * 400, times=1)
    ex = ctx.chat(model, tag, stream=True, deadline_s=st * 0.4 * tokens + 30)
    entries = ctx.attempts(tag, [model, *ctx.cfg.promises.fallbacks.get(model, [])])
    problems = stream_problems(ex, entries)
    if len(entries) != 1:
        problems.append(f"a steady stream was abandoned: attempts {trail(entries)}")
    return judge(problems, {**stream_evidence(ex), "attempts": trail(entries)},
                 f"a {ex.elapsed_s:.1f}s stream with tokens {st * 0.4:.1f}s apart came whole")


@check("streams.provider_without_done")
def provider_without_done(ctx: CheckContext) -> Verdict:
    """The provider finishes (finish_reason) but never sends `data: [DONE]`, as some OpenAI-compatible
    servers do: the caller still gets the whole text and a stream that ends with [DONE]."""
    model, tag = ctx.model("openai"), ctx.tag()
    ctx.provider_of(model).script(tag=tag, omit_done=True)
    ex = ctx.chat(model, tag, stream=True)
    entries = ctx.attempts(tag, [model])
    return judge(stream_problems(ex, entries), {**stream_evidence(ex), "attempts": trail(entries)},
                 "the stream came whole and ended with [DONE]")


@check("streams.clean_end_mid_answer")
def clean_end_mid_answer(ctx: CheckContext) -> Verdict:
    """The provider ends its HTTP body properly after 6 of 30 tokens, with no finish_reason and no
    [DONE]: a truncation that looks like an end. It must never reach the caller as a complete stream."""
    model, tag = ctx.model("openai"), ctx.tag()
    ctx.provider_of(model).script(tag=tag, tokens=30, end_after_chunks=7)
    ex = ctx.chat(model, tag, stream=True)
    entries = ctx.attempts(tag, [model, *ctx.cfg.promises.fallbacks.get(model, [])])
    s = os_.parse(ex.events)
    evidence = {**stream_evidence(ex), "attempts": trail(entries)}
    whole = [e for e in entries if e.get("completed") and not e.get("ended_early")]   # a retry or a fallback that answered
    if whole and not stream_problems(ex, whole):
        return Verdict("PASS", "the truncated stream was rescued (retried or failed over) and came whole", evidence)
    if _complete(s):
        raise Deviation(f"a stream the provider ended after {len(os_.text(s))} characters, mid-answer, reached the "
                        f"caller as complete ([DONE], finish_reason {os_.finish_reason_value(s)!r})", evidence)
    return Verdict("PASS", f"the truncated stream was not passed off as complete ({ex.error or f'HTTP {ex.status}'})",
                   evidence)


@check("streams.malformed_inserted")
def malformed_inserted(ctx: CheckContext, advisory: bool = False) -> Verdict:
    """A malformed event is inserted into the provider's stream beside the real ones (no text lost).
    Never: the malformed event passed on, or a damaged text passed off as complete.
    advisory: rescue vs clean error, reported apart: the answer arriving whole is PASS; a clean error
    (the stream ended unfinished, within the bound) is PARTIAL: nothing broken, nothing rescued."""
    model, tag = ctx.model("openai"), ctx.tag()
    ctx.provider_of(model).script(tag=tag, tokens=20, malformed_insert_at_chunk=5)
    ex = ctx.chat(model, tag, stream=True, deadline_s=30)
    entries = ctx.attempts(tag, [model, *ctx.cfg.promises.fallbacks.get(model, [])])
    s = os_.parse(ex.events)
    evidence: dict[str, Any] = {**stream_evidence(ex), "attempts": trail(entries)}
    if ex.error and "deadline" in ex.error:
        raise Deviation(f"the stream never ended: {ex.error}", evidence)
    if s.bad:
        raise Deviation(f"the malformed event reached the caller: {s.bad[0]}", evidence)
    entry = next((e for e in entries if e.get("answer_text") is not None), None)
    why = shortfall(os_.text(s), entry["answer_text"]) if entry else "no provider answered"
    if _complete(s) and why:
        raise Deviation(f"a damaged stream was passed off as complete: {why}", evidence)
    if _complete(s):
        return Verdict("PASS", "the malformed event was dropped and the answer arrived whole (a rescue)", evidence)
    if not advisory:
        return Verdict("PASS", f"the stream was ended unfinished, cleanly ({ex.error or f'HTTP {ex.status}'})", evidence)
    raise Deviation(f"a clean error, not a rescue: the stream ended unfinished ({ex.error or f'HTTP {ex.status}'}) "
                    f"although every event of the answer but the malformed one had arrived", evidence, status=PARTIAL)
