"""The client's view: the official `openai` and `anthropic` Python SDKs, pointed at the gateway, parse
every answer and streamed event without error and reconstruct the text, tool calls and usage the
provider wrote (the journal), their stream helpers included. The SDKs never retry here
(max_retries=0: attempts are counted upstream) and each call runs under a total deadline."""
from __future__ import annotations

import json
import threading
from typing import Any, Callable, Literal, Optional

from harness.checks.base import CheckContext, Deviation, Unsupported, Verdict, check, judge, provider_usage
from harness.checks.completeness import provider_answer, shortfall
from harness.checks.openai_chat import WEATHER_TOOL

DEADLINE_S = 30
UNKNOWN = "no-such-model-harness"


def _within(what: str, fn: Callable[[], Any], deadline_s: float = DEADLINE_S) -> Any:
    """fn() in a thread under a total deadline (an SDK's own timeouts are per read); its exception,
    if any, is re-raised here."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
            box["error"] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(deadline_s)
    if t.is_alive():
        raise Deviation(f"{what}: the SDK call had not finished after {deadline_s:g}s", {})
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _sdk_failed(what: str, exc: BaseException) -> Deviation:
    return Deviation(f"{what}: the SDK raised {type(exc).__name__}: {str(exc)[:300]}",
                     {"exception": type(exc).__name__, "message": str(exc)[:2000]})


def _headers(ctx: CheckContext, model: str) -> dict[str, str]:
    return {**ctx.gateway.base_headers, **ctx.gateway.auth, **ctx.model_headers(model)}


def _key(ctx: CheckContext) -> str:
    return ctx.gateway_key or "sk-harness-no-key"


def _base(ctx: CheckContext, kind: str, model: str, suffix: str) -> str:
    path = ctx.path(kind, model)
    if not path.endswith(suffix):
        raise Unsupported(f"the gateway's {kind} route {path!r} does not end in {suffix!r}, where the SDK sends it")
    return ctx.gateway.base_url + path[: -len(suffix)]


def _usage_violations(got: Optional[dict[str, Any]], entry: dict[str, Any], names: tuple[str, str]) -> list[str]:
    want = provider_usage(entry)
    if not isinstance(want, dict):
        return []
    got = got or {}
    pairs = [(names[0], "prompt_tokens"), (names[1], "completion_tokens")]
    return [f"usage.{g} is {got.get(g)!r}, the provider reported {want.get(w)!r}" for g, w in pairs if got.get(g) != want.get(w)]


OpenAICase = Literal["chat", "chat_stream", "chat_stream_helper", "tools", "tools_stream_helper",
                     "responses", "responses_stream_helper", "error"]


@check("sdk.openai")
def openai_sdk(ctx: CheckContext, case: OpenAICase) -> Verdict:
    try:
        import openai
    except ImportError:
        raise Unsupported("the openai SDK is not installed (pip install 'llm-gateway-harness[dev]')") from None
    model, tag = ctx.model("openai"), ctx.tag()
    responses = case.startswith("responses")
    if responses and "openai_responses" not in ctx.cfg.target.protocols:
        raise Unsupported("the gateway does not expose the Responses API (target.protocols)")
    base = _base(ctx, "responses" if responses else "chat", model, "/responses" if responses else "/chat/completions")
    client = openai.OpenAI(base_url=base, api_key=_key(ctx), max_retries=0, timeout=DEADLINE_S,
                           default_headers=_headers(ctx, model))
    content = f"What is the weather in Paris? [h:{tag}]" if "tools" in case else f"Say something. [h:{tag}]"
    messages = [{"role": "user", "content": content}]
    ctx._sending(model, tag)
    if "tools" in case:
        ctx.needs("tools")
    got: dict[str, Any] = {}
    try:
        if case == "error":
            return _openai_error(ctx, client, openai)
        if case == "chat":
            r = _within(case, lambda: client.chat.completions.create(model=model, messages=messages))
            got = {"text": r.choices[0].message.content, "usage": r.usage.model_dump() if r.usage else None}
        elif case == "chat_stream":
            def run() -> dict[str, Any]:
                text, usage = "", None
                for chunk in client.chat.completions.create(model=model, messages=messages, stream=True,
                                                            stream_options={"include_usage": True}):
                    for ch in chunk.choices:
                        text += ch.delta.content or ""
                    usage = chunk.usage.model_dump() if chunk.usage else usage
                return {"text": text, "usage": usage}
            got = _within(case, run)
        elif case in ("chat_stream_helper", "tools_stream_helper"):
            def run() -> Any:
                extra = {"tools": [WEATHER_TOOL]} if case == "tools_stream_helper" else {}
                with client.chat.completions.stream(model=model, messages=messages,
                                                    stream_options={"include_usage": True}, **extra) as s:
                    for _ in s:
                        pass
                    return s.get_final_completion()
            r = _within(case, run)
            msg = r.choices[0].message
            got = {"text": msg.content, "usage": r.usage.model_dump() if r.usage else None,
                   "tool_calls": [(c.function.name, c.function.arguments) for c in msg.tool_calls or []]}
        elif case == "tools":
            r = _within(case, lambda: client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL]))
            got = {"tool_calls": [(c.function.name, c.function.arguments) for c in r.choices[0].message.tool_calls or []],
                   "usage": r.usage.model_dump() if r.usage else None}
        elif case == "responses":
            r = _within(case, lambda: client.responses.create(model=model, input=content))
            got = {"text": r.output_text, "usage": r.usage.model_dump() if r.usage else None}
        else:   # responses_stream_helper
            def run() -> Any:
                with client.responses.stream(model=model, input=content) as s:
                    for _ in s:
                        pass
                    return s.get_final_response()
            r = _within(case, run)
            got = {"text": r.output_text, "usage": r.usage.model_dump() if r.usage else None}
    except Deviation:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the SDK raised is the finding
        raise _sdk_failed(case, exc) from None
    entry = provider_answer(ctx, tag, [model])
    evidence = {"sdk": f"openai {openai.__version__}", "got": got, "provider_text": entry["answer_text"]}
    violations = []
    if "tools" in case:
        calls = got.get("tool_calls") or []
        args = "".join(a for _, a in calls)
        if not calls:
            violations.append("the SDK found no tool calls")
        elif (why := shortfall(args, entry["answer_text"])):
            violations.append(f"tool-call arguments: {why}")
        else:
            for name, a in calls:
                try:
                    json.loads(a)
                except ValueError:
                    violations.append(f"tool call {name}: arguments are not JSON: {a[:80]!r}")
    elif (why := shortfall(got.get("text"), entry["answer_text"])):
        violations.append(why)
    names = ("input_tokens", "output_tokens") if responses else ("prompt_tokens", "completion_tokens")
    violations += _usage_violations(got.get("usage"), entry, names)
    return judge(violations, evidence, f"the openai SDK reconstructed the provider's {'tool calls' if 'tools' in case else 'text'} and usage ({case})")


def _openai_error(ctx: CheckContext, client: Any, openai: Any) -> Verdict:
    """An error the gateway returns (an unknown model) is raised by the SDK as a 4xx APIStatusError with a
    message: a client error it will not retry, not a 5xx it retries, nor a parse failure."""
    try:
        r = _within("error", lambda: client.chat.completions.create(
            model=UNKNOWN, messages=[{"role": "user", "content": "hi"}]))
    except openai.APIStatusError as exc:
        evidence = {"exception": type(exc).__name__, "status": exc.status_code, "message": str(exc.message)[:500]}
        violations = []
        if not 400 <= exc.status_code < 500:
            violations.append(f"the SDK raised {type(exc).__name__} (HTTP {exc.status_code}): a server error it "
                              "retries by default, for the client's own mistake")
        if not exc.message:
            violations.append("the error carries no message")
        return judge(violations, evidence, f"the SDK raised {type(exc).__name__} (HTTP {exc.status_code}) with a message")
    except Deviation:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _sdk_failed("error", exc) from None
    raise Deviation(f"an unknown model was answered, not refused: {str(r)[:200]}", {})


AnthropicCase = Literal["messages", "messages_stream_helper", "messages_raw_stream", "tools"]


@check("sdk.anthropic")
def anthropic_sdk(ctx: CheckContext, case: AnthropicCase) -> Verdict:
    try:
        import anthropic
    except ImportError:
        raise Unsupported("the anthropic SDK is not installed (pip install 'llm-gateway-harness[dev]')") from None
    if "anthropic_messages" not in ctx.cfg.target.protocols:
        raise Unsupported("the gateway does not expose the Anthropic Messages API (target.protocols)")
    model, tag = ctx.model("anthropic"), ctx.tag()
    client = anthropic.Anthropic(base_url=_base(ctx, "messages", model, "/v1/messages"), api_key=_key(ctx),
                                 max_retries=0, timeout=DEADLINE_S, default_headers=_headers(ctx, model))
    content = f"What is the weather in Paris? [h:{tag}]" if case == "tools" else f"Say something. [h:{tag}]"
    args: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": content}]}
    ctx._sending(model, tag)
    try:
        if case == "messages":
            r = _within(case, lambda: client.messages.create(**args))
            got = {"text": "".join(b.text for b in r.content if b.type == "text"), "usage": r.usage.model_dump()}
        elif case == "messages_stream_helper":
            def run() -> Any:
                with client.messages.stream(**args) as s:
                    for _ in s.text_stream:
                        pass
                    return s.get_final_message()
            r = _within(case, run)
            got = {"text": "".join(b.text for b in r.content if b.type == "text"), "usage": r.usage.model_dump()}
        elif case == "messages_raw_stream":
            def run() -> dict[str, Any]:
                text, kinds, usage = "", [], {}
                for ev in client.messages.create(stream=True, **args):
                    kinds.append(ev.type)
                    if ev.type == "message_start":
                        usage["input_tokens"] = ev.message.usage.input_tokens
                    if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                        text += ev.delta.text
                    if ev.type == "message_delta":
                        usage["output_tokens"] = ev.usage.output_tokens
                return {"text": text, "usage": usage, "events": kinds}
            got = _within(case, run)
        else:
            ctx.needs("tools")
            tool = {"name": WEATHER_TOOL["function"]["name"], "description": WEATHER_TOOL["function"]["description"],
                    "input_schema": WEATHER_TOOL["function"]["parameters"]}
            r = _within(case, lambda: client.messages.create(tools=[tool], **args))
            got = {"tool_uses": [(b.name, b.input) for b in r.content if b.type == "tool_use"], "usage": r.usage.model_dump()}
    except Deviation:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _sdk_failed(case, exc) from None
    entry = provider_answer(ctx, tag, [model])
    evidence = {"sdk": f"anthropic {anthropic.__version__}", "got": got, "provider_text": entry["answer_text"]}
    violations = []
    if case == "tools":
        uses = got["tool_uses"]
        try:
            want = json.loads(entry["answer_text"])
        except ValueError:
            want = entry["answer_text"]
        if [u[1] for u in uses] != [want]:
            violations.append(f"tool_use input {[u[1] for u in uses]} is not the provider's {want!r}")
    elif (why := shortfall(got["text"], entry["answer_text"])):
        violations.append(why)
    if case == "messages_raw_stream" and got["events"].count("message_stop") != 1:
        violations.append(f"{got['events'].count('message_stop')} message_stop events (one ends a message)")
    violations += _usage_violations(got.get("usage"), entry, ("input_tokens", "output_tokens"))
    return judge(violations, evidence, f"the anthropic SDK reconstructed the provider's {'tool use' if case == 'tools' else 'text'} and usage ({case})")
