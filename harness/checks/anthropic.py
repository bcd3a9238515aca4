"""Anthropic Messages API through the gateway, plain and streamed."""
from __future__ import annotations

from typing import Literal

from harness.checks.base import CheckContext, Unsupported, Verdict, check, judge, require_2xx
from harness.checks.openai_stream import stream_evidence
from harness.oracles import anthropic as ao
from harness.oracles import openai_stream as os_


def _model(ctx: CheckContext) -> str:
    if "anthropic_messages" not in ctx.cfg.target.protocols:
        raise Unsupported("the gateway does not expose the Anthropic Messages API (target.protocols)")
    return ctx.model("anthropic")


@check("anthropic.shape")
def shape(ctx: CheckContext) -> Verdict:
    ex = ctx.messages(_model(ctx), ctx.tag())
    require_2xx(ex)
    return judge(ao.message_shape(ex.json()), {"exchange": ex.evidence()}, "Anthropic message shape")


@check("anthropic.stream")
def stream(ctx: CheckContext, oracle: Literal["content_type", "event_lines", "event_order", "message_delta_usage"]) -> Verdict:
    ex = ctx.messages(_model(ctx), ctx.tag(), stream=True)
    require_2xx(ex)
    oracles = {"content_type": lambda: os_.content_type(ex.content_type),
               "event_lines": lambda: ao.event_lines_match(ex.events),
               "event_order": lambda: ao.event_order(ex.events),
               "message_delta_usage": lambda: ao.message_delta_usage(ex.events)}
    return judge(oracles[oracle](), stream_evidence(ex), f"{oracle} conforms")


@check("anthropic.text_equals_plain")
def text_equals_plain(ctx: CheckContext) -> Verdict:
    model = _model(ctx)
    plain, streamed = ctx.messages(model, ctx.tag()), ctx.messages(model, ctx.tag(), stream=True)
    require_2xx(plain)
    require_2xx(streamed)
    a, b = ao.text(plain.json()), ao.stream_text(streamed.events)
    return judge([] if a == b else [f"streamed text {b!r} differs from plain text {a!r}"],
                 {"plain": plain.evidence(), "streamed": stream_evidence(streamed)}, "streamed text equals plain text")


@check("anthropic.matches_provider")
def matches_provider(ctx: CheckContext) -> Verdict:
    model, tag = _model(ctx), ctx.tag()
    ex = ctx.messages(model, tag)
    require_2xx(ex)
    entries = ctx.journal(model, tag)
    want = entries[0]["answer_text"] if len(entries) == 1 else None
    got = ao.text(ex.json())
    return judge([] if got == want else [f"the caller got {got!r}, the provider answered {want!r} "
                                         f"({len(entries)} upstream request(s))"],
                 {"exchange": ex.evidence()}, "text passed through intact")
