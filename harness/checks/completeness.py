"""Completeness judged from the content: the text (or tool-call arguments) the caller read is the
text the provider wrote, as the providers' journal records it (`answer_text`).

`[DONE]` and a finish_reason only say a stream claims to be complete; a gateway that cuts a stream
short and then ends it cleanly keeps both markers and loses the answer. So every stream judged
here is compared, character for character, with what the provider sent.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from harness.checks.base import CheckContext, NotJudged, Unsupported, Verdict, check, judge, require_2xx
from harness.checks.openai_chat import WEATHER_TOOL
from harness.checks.openai_stream import stream_evidence
from harness.client.http import Exchange
from harness.oracles import anthropic as ao
from harness.oracles.common import get
from harness.oracles import openai_stream as os_
from harness.oracles import responses as ro


def provider_answer(ctx: CheckContext, tag: str, models: list[str]) -> dict[str, Any]:
    """The one journal entry that answered this tag (200, text written), at the providers of `models`
    and of their fallbacks: the caller's answer is compared with whichever provider gave it."""
    chain = [f for m in models for f in ctx.cfg.promises.fallbacks.get(m, [])]
    answered = [e for e in ctx.attempts(tag, [*models, *chain])
                if e.get("status") == 200 and e.get("answer_text") is not None]
    if len(answered) != 1:
        raise NotJudged(f"not judged: expected one provider answer for the request, the journals show {len(answered)}",
                        {"journal": answered[:4]})
    return answered[0]


def shortfall(got: Optional[str], want: str) -> Optional[str]:
    """Why `got` is not the provider's `want` (None when it is): a truncation says how much was lost."""
    if got == want:
        return None
    got = got or ""
    if want.startswith(got):
        return (f"the caller read {len(got)} of the {len(want)} characters the provider wrote "
                f"(truncated after {got[-40:]!r})")
    return f"the caller read {got[:80]!r}, the provider wrote {want[:80]!r}"


def complete_stream_carries_all(ctx: CheckContext, ex: Exchange, s: os_.Stream, model: str, tag: str) -> list[str]:
    """For the completeness markers' claims: a stream that says it is complete ([DONE] after a
    finish_reason) must carry every character the provider wrote."""
    if not (s.done and os_.finish_reason_value(s)):
        return []
    entry = provider_answer(ctx, tag, [model])
    why = shortfall(os_.text(s), entry["answer_text"])
    return [f"the stream ended as complete ([DONE], finish_reason {os_.finish_reason_value(s)!r}) but {why}"] if why else []


@check("completeness.openai_stream")
def openai_stream(ctx: CheckContext, what: Literal["text", "long_text", "tool_arguments", "finish_reason"]) -> Verdict:
    """A streamed chat completion, compared with the provider's own answer in the journal."""
    model, tag = ctx.model("openai"), ctx.tag()
    extra: dict[str, Any] = {}
    if what == "long_text":
        ctx.provider_of(model).script(tag=tag, tokens=300)
    if what == "tool_arguments":
        ctx.needs("tools")
        extra = {"prompt": "What is the weather in Paris?", "tools": [WEATHER_TOOL]}
    if what == "finish_reason":
        extra = {"max_tokens": 5}   # the provider stops at 5 tokens: finish_reason length
    ex = ctx.chat(model, tag, stream=True, **extra)
    require_2xx(ex)
    s = os_.parse(ex.events)
    entry = provider_answer(ctx, tag, [model])
    evidence = {**stream_evidence(ex), "provider": {"answer_text": entry["answer_text"], "finish": entry["finish"]}}
    if what == "finish_reason":
        got = os_.finish_reason_value(s)
        return judge([] if got == entry["finish"] else [f"finish_reason is {got!r}; the provider stopped with {entry['finish']!r}"],
                     evidence, f"finish_reason {got!r} is the provider's")
    if what == "tool_arguments":
        got = "".join(c["arguments"] for _, c in sorted(os_.tool_calls(s).items(), key=lambda kv: str(kv[0])))
    else:
        got = os_.text(s)
    why = shortfall(got, entry["answer_text"])
    return judge([why] if why else [], evidence, f"all {len(entry['answer_text'])} characters the provider wrote")


@check("completeness.plain_finish_reason")
def plain_finish_reason(ctx: CheckContext) -> Verdict:
    """A plain answer cut by max_tokens says so: finish_reason length, as the provider said."""
    model, tag = ctx.model("openai"), ctx.tag()
    ex = ctx.chat(model, tag, max_tokens=5)
    require_2xx(ex)
    entry = provider_answer(ctx, tag, [model])
    got = get(ex.json(), "choices", 0, "finish_reason")
    return judge([] if got == entry["finish"] else [f"finish_reason is {got!r}; the provider stopped with {entry['finish']!r}"],
                 {"exchange": ex.evidence(), "provider_finish": entry["finish"]}, f"finish_reason {got!r} is the provider's")


def _other_protocol(ctx: CheckContext, protocol: str) -> Verdict:
    """A streamed Messages or Responses answer, compared with the provider's text."""
    what = {"anthropic_messages": "Anthropic Messages API", "openai_responses": "Responses API"}[protocol]
    if protocol not in ctx.cfg.target.protocols:
        raise Unsupported(f"the gateway does not expose the {what} (target.protocols)")
    anthropic = protocol == "anthropic_messages"
    model, tag = ctx.model("anthropic" if anthropic else "openai"), ctx.tag()
    ex = (ctx.messages if anthropic else ctx.responses)(model, tag, stream=True)
    require_2xx(ex)
    entry = provider_answer(ctx, tag, [model])
    why = shortfall((ao.stream_text if anthropic else ro.stream_text)(ex.events), entry["answer_text"])
    if why is None and not anthropic and not any('"response.completed"' in e.data for e in ex.events):
        why = "the stream never sent response.completed"
    return judge([why] if why else [], {**stream_evidence(ex), "provider_text": entry["answer_text"]},
                 f"the streamed {what} text is all the provider wrote")


@check("completeness.anthropic_stream")
def anthropic_stream(ctx: CheckContext) -> Verdict:
    return _other_protocol(ctx, "anthropic_messages")


@check("completeness.responses_stream")
def responses_stream(ctx: CheckContext) -> Verdict:
    return _other_protocol(ctx, "openai_responses")
