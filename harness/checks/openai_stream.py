"""OpenAI chat completions, streamed (SSE)."""
from __future__ import annotations

from typing import Any

from harness.checks.params import params_rule
from harness.checks.base import CheckContext, Verdict, check, judge, provider_usage, require_2xx, require_answer
from harness.checks.openai_chat import TIME_TOOL, WEATHER_TOOL
from harness.client.http import Exchange
from harness.oracles import errors as eo
from harness.oracles import openai_chat as oc
from harness.oracles import openai_stream as os_


def stream_evidence(ex: Exchange) -> dict[str, Any]:
    """A streamed exchange as evidence: its first 40 events raw, and what was left unterminated.
    Public: every check that judges a stream (Anthropic's, the Responses API's, the schemas) shows it so."""
    ev = ex.evidence(limit=0)
    ev["events"] = [e.raw.decode("utf-8", "replace") for e in ex.events[:40]]
    if len(ex.events) > 40:
        ev["events"].append(f"... {len(ex.events) - 40} more events")
    if ex.leftover:
        ev["unterminated"] = ex.leftover[:500].decode("utf-8", "replace")
    return ev


def _stream(ctx: CheckContext, include_usage: bool = False, **extra: Any) -> tuple[Exchange, os_.Stream]:
    if include_usage:
        extra["stream_options"] = {"include_usage": True}
    ex = ctx.chat(ctx.model("openai"), ctx.tag(), stream=True, **extra)
    return ex, os_.parse(ex.events)


ORACLES = {
    "chunk_objects": os_.chunk_objects, "same_id": os_.same_id, "first_delta_role": os_.first_delta_role,
    "single_finish_reason_last": os_.single_finish_reason_last, "ends_with_done": os_.ends_with_done,
    "no_usage": os_.no_usage, "usage_once_final": os_.usage_once_final,
}


@check("openai_stream.content_type")
def content_type(ctx: CheckContext) -> Verdict:
    ex, _ = _stream(ctx)
    require_2xx(ex)
    return judge(os_.content_type(ex.content_type), stream_evidence(ex), "text/event-stream")


# The oracles that read the markers of a complete stream: a stream that carries them must also
# carry all the provider wrote (a stream cut short and then ended cleanly keeps both markers).
COMPLETENESS = {"single_finish_reason_last", "ends_with_done"}


def _known_oracle(params: dict) -> None:
    if params.get("oracle") not in ORACLES:
        raise ValueError(f"oracle: {params.get('oracle')!r} is not one of {', '.join(sorted(ORACLES))}")


@check("openai_stream.shape")
@params_rule(_known_oracle)
def shape(ctx: CheckContext, oracle: str, include_usage: bool = False) -> Verdict:
    model, tag = ctx.model("openai"), ctx.tag()
    ex = ctx.chat(model, tag, stream=True, **({"stream_options": {"include_usage": True}} if include_usage else {}))
    require_2xx(ex)
    s = os_.parse(ex.events)
    violations = os_.well_formed(s) + ORACLES[oracle](s)
    if oracle in COMPLETENESS and not violations:
        from harness.checks.completeness import complete_stream_carries_all
        violations = complete_stream_carries_all(ctx, ex, s, model, tag)
    return judge(violations, stream_evidence(ex), f"{oracle} conforms")


@check("openai_stream.options_without_stream_refused")
def options_without_stream(ctx: CheckContext) -> Verdict:
    ex = ctx.chat(ctx.model("openai"), ctx.tag(), stream_options={"include_usage": True})
    require_answer(ex)
    return judge(eo.client_error_status(ex.status, ex.error) + (eo.openai_error_object(ex.json()) if ex.status and ex.status >= 400 else []),
                 {"exchange": ex.evidence()}, f"refused with HTTP {ex.status}")


@check("openai_stream.text_equals_plain")
def text_equals_plain(ctx: CheckContext) -> Verdict:
    model = ctx.model("openai")
    plain = ctx.chat(model, ctx.tag())
    streamed = ctx.chat(model, ctx.tag(), stream=True)
    require_2xx(plain)
    require_2xx(streamed)
    a, b = oc.text(plain.json()), os_.text(os_.parse(streamed.events))
    return judge([] if a == b else [f"streamed text {b!r} differs from plain text {a!r}"],
                 {"plain": plain.evidence(), "streamed": stream_evidence(streamed)}, "streamed text equals plain text")


@check("openai_stream.tool_deltas")
def tool_deltas(ctx: CheckContext, parallel: bool = False) -> Verdict:
    tools = [WEATHER_TOOL, TIME_TOOL] if parallel else [WEATHER_TOOL]
    ctx.needs("tools", *(["parallel_tools"] if parallel else []))
    ex, s = _stream(ctx, prompt="What is the weather in Paris?", tools=tools)
    require_2xx(ex)
    violations = os_.tool_call_deltas(s) + (os_.parallel_indexes(s, 2) if parallel else [])
    if os_.finish_reason_value(s) != "tool_calls":
        violations.append(f"finish_reason should be 'tool_calls', got {os_.finish_reason_value(s)!r}")
    return judge(violations, stream_evidence(ex), "tool-call deltas conform")


@check("openai_stream.usage_matches_provider")
def usage_matches_provider(ctx: CheckContext) -> Verdict:
    model, tag = ctx.model("openai"), ctx.tag()
    ex = ctx.chat(model, tag, stream=True, stream_options={"include_usage": True})
    require_2xx(ex)
    s = os_.parse(ex.events)
    entries = ctx.journal(model, tag)
    want = provider_usage(entries[0]) if len(entries) == 1 else None
    got = next((c["usage"] for c in s.chunks if c.get("usage") is not None), None)
    if isinstance(got, dict):
        got = {k: got.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    violations = [] if got == want else [f"streamed usage {got!r} differs from the provider's {want!r}"]
    return judge(violations, {**stream_evidence(ex), "provider_usage": want}, "streamed usage equals the provider's")
