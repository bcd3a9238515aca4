"""OpenAI chat completions, non-streamed: shape, JSON mode, tool calls, end-to-end fidelity."""
from __future__ import annotations

from harness.checks.params import params_rule
from harness.checks.base import CheckContext, Deviation, Verdict, check, judge, provider_usage, require_2xx
from harness.oracles import openai_chat as oc

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "Local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _known_oracle(params: dict) -> None:
    if params.get("oracle") not in oc.SHAPE:
        raise ValueError(f"oracle: {params.get('oracle')!r} is not one of {', '.join(sorted(oc.SHAPE))}")


@check("openai_chat.shape")
@params_rule(_known_oracle)
def shape(ctx: CheckContext, oracle: str) -> Verdict:
    """One plain request; the named shape oracle judges the body."""
    ex = ctx.chat(ctx.model("openai"), ctx.tag())
    require_2xx(ex)
    return judge(oc.SHAPE[oracle](ex.json()), {"exchange": ex.evidence()}, f"{oracle} conforms")


@check("openai_chat.matches_provider")
def matches_provider(ctx: CheckContext, field: str) -> Verdict:
    """The caller gets what the provider answered: the same text, or the same usage."""
    model, tag = ctx.model("openai"), ctx.tag()
    ex = ctx.chat(model, tag)
    require_2xx(ex)
    entries = ctx.journal(model, tag)
    if len(entries) != 1:
        raise Deviation(f"expected one upstream request, the provider journal has {len(entries)}",
                        {"exchange": ex.evidence(), "journal": entries})
    upstream = entries[0]
    body = ex.json()
    if field == "content":
        got, want = oc.text(body), upstream["answer_text"]
    else:
        got, want = (body or {}).get("usage"), provider_usage(upstream)
        if isinstance(got, dict):  # gateways may add detail fields; the three totals must agree
            got = {k: got.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    violations = [] if got == want else [f"{field}: the caller got {got!r}, the provider answered {want!r}"]
    return judge(violations, {"exchange": ex.evidence(), "provider_answer": want}, f"{field} passed through intact")


@check("openai_chat.json_mode")
def json_mode(ctx: CheckContext) -> Verdict:
    ctx.needs("json")
    ex = ctx.chat(ctx.model("openai"), ctx.tag(), prompt="Answer in JSON.",
                  response_format={"type": "json_object"})
    require_2xx(ex)
    return judge(oc.json_content(ex.json()), {"exchange": ex.evidence()}, "JSON mode content is a JSON object")


@check("openai_chat.tool_calls")
def tool_calls(ctx: CheckContext, parallel: bool = False) -> Verdict:
    tools = [WEATHER_TOOL, TIME_TOOL] if parallel else [WEATHER_TOOL]
    ctx.needs("tools", *(["parallel_tools"] if parallel else []))
    ex = ctx.chat(ctx.model("openai"), ctx.tag(), prompt="What is the weather in Paris?", tools=tools)
    require_2xx(ex)
    names = [t["function"]["name"] for t in tools]
    return judge(oc.tool_calls_shape(ex.json(), expected_names=names), {"exchange": ex.evidence()},
                 f"{len(names)} tool call(s) in the OpenAI shape")
