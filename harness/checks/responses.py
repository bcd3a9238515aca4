"""OpenAI Responses API through the gateway."""
from __future__ import annotations

from harness.checks.base import CheckContext, Unsupported, Verdict, check, judge, require_2xx
from harness.checks.failover import not_2xx
from harness.checks.openai_stream import stream_evidence
from harness.oracles import responses as ro


def _model(ctx: CheckContext) -> str:
    if "openai_responses" not in ctx.cfg.target.protocols:
        raise Unsupported("the gateway does not expose the Responses API (target.protocols)")
    return ctx.model("openai")


@check("responses.shape")
def shape(ctx: CheckContext) -> Verdict:
    ex = ctx.responses(_model(ctx), ctx.tag())
    require_2xx(ex)
    return judge(ro.response_shape(ex.json()), {"exchange": ex.evidence()}, "Responses object shape")


@check("responses.stream")
def stream(ctx: CheckContext) -> Verdict:
    model = _model(ctx)
    ex = ctx.responses(model, ctx.tag(), stream=True)
    require_2xx(ex)
    plain = ctx.responses(model, ctx.tag())
    violations = ro.stream_events(ex.events)
    if not_2xx(plain) is None and ro.stream_text(ex.events) != ro.text(plain.json()):
        violations.append(f"streamed text {ro.stream_text(ex.events)!r} differs from plain {ro.text(plain.json())!r}")
    return judge(violations, stream_evidence(ex), "Responses stream events conform")
