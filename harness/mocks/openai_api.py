"""OpenAI-style provider: chat completions, Responses, legacy completions, embeddings, models.

Each is as strict as OpenAI's own API (https://platform.openai.com/docs/api-reference), so a gateway's
laxness is never hidden behind a lax provider, and honours what the harness's claims rely on: tools
and parallel tool calls, JSON mode and structured outputs, `max_tokens` and `stop` (finish reasons),
usage (with `stream_options.include_usage` in streams). A `Dialect` carries what OpenAI-compatible
servers (llama.cpp, vLLM, Ollama's /v1: see local_openai_api) do differently with the same routes.
"""
from __future__ import annotations

import base64
import secrets
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from aiohttp import web

from harness.mocks import content
from harness.mocks.answer import Answer, Ask, Tool, answer, stops
from harness.mocks.exchange import CAN_ALL, Exchange, Frame, Route, sse, sse_value


def error_shape(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 429: "rate_limit_error"}
    return {"error": {"message": message, "type": kinds.get(status, "server_error"),
                      "param": None, "code": None}}


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


@dataclass(frozen=True)
class Dialect:
    """What an OpenAI-compatible server does differently on the same routes."""
    name: str = "openai"
    error_shape: Callable[[int, str], Any] = error_shape
    usage: Callable[[int, int], dict[str, Any]] = _usage
    owned_by: str = "harness-mock"
    fingerprint: Optional[str] = "fp_mock"
    honours_parallel_flag: bool = True          # vLLM ignores parallel_tool_calls
    empty_tool_calls: bool = False              # vLLM sends "tool_calls": [] on a plain answer
    extra: Callable[[dict[str, Any], Answer], None] = field(default=lambda payload, ans: None)  # per-server fields


OPENAI = Dialect()

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
# Numeric parameters and their allowed ranges, as OpenAI validates them (it answers 400 otherwise).
NUMBERS = {"temperature": (0, 2), "top_p": (0, 1), "presence_penalty": (-2, 2), "frequency_penalty": (-2, 2)}
INTEGERS = {"max_tokens": 1, "max_completion_tokens": 1, "n": 1, "seed": None}


def _validate_common(body: dict[str, Any]) -> Optional[str]:
    if not isinstance(body.get("model"), str):
        return "model is required"
    for name, (lo, hi) in NUMBERS.items():
        v = body.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi):
            return f"{name} must be a number between {lo} and {hi}"
    for name, lo in INTEGERS.items():
        v = body.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo)):
            return f"{name} must be an integer" + (f" >= {lo}" if lo is not None else "")
    if body.get("stream_options") is not None and not body.get("stream"):
        return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str) or (isinstance(stop, list) and len(stop) <= 4
                                                            and all(isinstance(s, str) for s in stop))):
        return "stop must be a string or a list of up to 4 strings"
    return None


def _validate_chat(body: dict[str, Any]) -> Optional[str]:
    """As strict as OpenAI, so a gateway's laxness is not hidden behind a lax provider."""
    problem = _validate_common(body)
    if problem:
        return problem
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "messages must be a non-empty list"
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return f"messages[{i}].role must be one of {sorted(ROLES)}"
        if m.get("role") == "tool" and not isinstance(m.get("tool_call_id"), str):
            return f"messages[{i}].tool_call_id is required for a tool message"
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "tools must be a list"
        for i, t in enumerate(tools):
            if not (isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict)
                    and isinstance(t["function"].get("name"), str)):
                return f"tools[{i}] must be {{type: function, function: {{name, parameters}}}}"
    rf = body.get("response_format")
    if rf is not None:
        if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
            return "response_format.type must be one of text, json_object, json_schema"
        if rf["type"] == "json_schema" and not isinstance((rf.get("json_schema") or {}).get("name"), str):
            return "response_format.json_schema.name is required"
    return None


def _chat_ask(body: dict[str, Any], dialect: Dialect) -> Ask:
    prompt = content.prompt_text_openai(body)
    tools = [Tool(t["function"]["name"], t["function"].get("parameters") or {}) for t in body.get("tools") or []]
    choice = body.get("tool_choice")
    forced = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    msgs = body["messages"]
    rf = body.get("response_format") or {}
    json_mode: Any = False
    if rf.get("type") == "json_object":
        json_mode = True
    elif rf.get("type") == "json_schema":
        json_mode = (rf.get("json_schema") or {}).get("schema") or True
    return Ask(model=body["model"], prompt=prompt, prompt_tokens=content.count_words(prompt) + 4 * len(msgs),
               tools=tools, choice=choice if isinstance(choice, str) else "auto", forced=forced,
               parallel=body.get("parallel_tool_calls") is not False or not dialect.honours_parallel_flag,
               returning=isinstance(msgs[-1], dict) and msgs[-1].get("role") == "tool",
               json=json_mode, max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
               stop=stops(body.get("stop")))


def _calls_json(ans: Answer) -> list[dict[str, Any]]:
    return [{"id": "call_" + c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in ans.calls]


_HOLE = "\x00"   # the template's text, where each token's goes (JSON writes it as \u0000)


def _content_chunks(chunk: Callable[[dict[str, Any]], bytes]) -> Callable[[str], bytes]:
    """`chunk({"content": text})`, made from one template: the content chunks of a stream differ only
    in their text. The same bytes in a fraction of the time: a stream's frames are all made as its
    request arrives, and at 1,000 streams requests arrive in bursts the mock must get through
    before any first token is due. If the hole is not in the template exactly once (a model name
    with a NUL in it), every chunk is encoded in full."""
    template, hole = chunk({"content": _HOLE}), sse_value(_HOLE)
    if template.count(hole) != 1:
        return lambda text: chunk({"content": text})
    head, tail = template.split(hole)
    return lambda text: head + sse_value(text) + tail


async def chat_completions(ex: Exchange, dialect: Dialect = OPENAI) -> web.StreamResponse:
    ended = await ex.admit(_validate_chat)
    if ended is not None:
        return ended
    body = ex.body
    ans = answer(_chat_ask(body, dialect), ex.fixed_content, ex.tokens(content.DEFAULT_TOKENS))
    usage = None if ex.omit_usage else dialect.usage(ans.prompt_tokens, ans.completion_tokens)
    ex.settle(ans, usage)
    model, calls = body["model"], _calls_json(ans)
    cid, created = "chatcmpl-" + secrets.token_hex(12), int(time.time())

    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": None if calls else ans.text, "refusal": None}
        if calls or dialect.empty_tool_calls:
            message["tool_calls"] = calls
        payload: dict[str, Any] = {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": ans.finish}],
        }
        if dialect.fingerprint:
            payload["system_fingerprint"] = dialect.fingerprint
        if usage:
            payload["usage"] = usage
        dialect.extra(payload, ans)
        return await ex.send_json(payload, max(1, len(ans.pieces)))

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish_reason: Optional[str] = None) -> bytes:
        c: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if dialect.fingerprint:
            c["system_fingerprint"] = dialect.fingerprint
        if include_usage:
            c["usage"] = None  # OpenAI sends an explicit null on every chunk but the last
        return sse(c)

    content_chunk = _content_chunks(chunk)
    frames: list[Frame] = [(chunk({"role": "assistant", "content": None if calls else ""}), False)]
    for i, call in enumerate(calls):
        frames.append((chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                              "function": {"name": call["function"]["name"], "arguments": ""}}]}), True))
        args = call["function"]["arguments"]
        for j in range(0, len(args), 8):
            frames.append((chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j:j + 8]}}]}), True))
    if not calls:
        frames += [(content_chunk(t), True) for t in ans.pieces]
    frames.append((chunk({}, ans.finish), False))
    if include_usage and usage:
        last: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                                "choices": [], "usage": usage}
        if dialect.fingerprint:
            last["system_fingerprint"] = dialect.fingerprint
        frames.append((sse(last), False))
    frames.append((sse("[DONE]"), False))
    return await ex.send_stream(frames)


# -- legacy completions (https://platform.openai.com/docs/api-reference/completions) -------------

def _validate_completions(body: dict[str, Any]) -> Optional[str]:
    problem = _validate_common(body)
    if problem:
        return problem
    prompt = body.get("prompt")
    if not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt)):
        return "prompt is required (a string or a list of strings or token lists)"
    if body.get("tools") is not None or body.get("response_format") is not None:
        # Not parameters of this API: OpenAI refuses them as unrecognized.
        return "Unrecognized request argument supplied: " + ("tools" if body.get("tools") is not None else "response_format")
    return None


async def completions(ex: Exchange, dialect: Dialect = OPENAI) -> web.StreamResponse:
    ended = await ex.admit(_validate_completions)
    if ended is not None:
        return ended
    body = ex.body
    prompt = body["prompt"] if isinstance(body["prompt"], str) else " ".join(
        p if isinstance(p, str) else " ".join(map(str, p)) for p in body["prompt"])
    # max_tokens defaults to 16 in this API (not "as long as the model likes").
    ask = Ask(model=body["model"], prompt=prompt, prompt_tokens=content.count_words(prompt) + 1,
              max_tokens=body.get("max_tokens", 16), stop=stops(body.get("stop")))
    ans = answer(ask, ex.fixed_content, ex.tokens(content.DEFAULT_TOKENS))
    usage = None if ex.omit_usage else {k: v for k, v in dialect.usage(ans.prompt_tokens, ans.completion_tokens).items()
                                        if k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    ex.settle(ans, usage)
    cid, created, model = "cmpl-" + secrets.token_hex(12), int(time.time()), body["model"]

    def obj(choices: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": cid, "object": "text_completion", "created": created, "model": model,
                               "choices": choices}
        if dialect.fingerprint:
            out["system_fingerprint"] = dialect.fingerprint
        return out

    if not body.get("stream"):
        payload = obj([{"text": ans.text, "index": 0, "logprobs": None, "finish_reason": ans.finish}])
        if usage:
            payload["usage"] = usage
        return await ex.send_json(payload, max(1, len(ans.pieces)))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    frames: list[Frame] = [(sse(obj([{"text": t, "index": 0, "logprobs": None, "finish_reason": None}])), True)
                           for t in ans.pieces]
    frames.append((sse(obj([{"text": "", "index": 0, "logprobs": None, "finish_reason": ans.finish}])), False))
    if include_usage and usage:
        frames.append((sse({**obj([]), "usage": usage}), False))
    frames.append((sse("[DONE]"), False))
    return await ex.send_stream(frames)


# -- embeddings (https://platform.openai.com/docs/api-reference/embeddings) ---------------------

def _inputs(value: Any) -> Optional[list[str]]:
    """The texts to embed: a string, a list of strings, a token list or a list of token lists."""
    if isinstance(value, str):
        return [value] if value else None
    if isinstance(value, list) and value:
        if all(isinstance(v, str) and v for v in value):
            return list(value)
        if all(isinstance(v, int) for v in value):
            return [" ".join(map(str, value))]
        if all(isinstance(v, list) and v and all(isinstance(t, int) for t in v) for v in value):
            return [" ".join(map(str, v)) for v in value]
    return None


def _validate_embeddings(body: dict[str, Any]) -> Optional[str]:
    if not isinstance(body.get("model"), str):
        return "model is required"
    if _inputs(body.get("input")) is None:
        return "input must be a non-empty string, a list of strings, or token lists"
    if body.get("encoding_format") not in (None, "float", "base64"):
        return "encoding_format must be float or base64"
    dims = body.get("dimensions")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or dims < 1):
        return "dimensions must be an integer >= 1"
    return None


EMBEDDING_DIMS = 16   # small vectors: a gateway passes them through whatever their length


async def embeddings(ex: Exchange, dialect: Dialect = OPENAI) -> web.StreamResponse:
    ended = await ex.admit(_validate_embeddings)
    if ended is not None:
        return ended
    body = ex.body
    texts, model = _inputs(body["input"]) or [], body["model"]
    dims = body.get("dimensions") or EMBEDDING_DIMS
    data = []
    for i, t in enumerate(texts):
        vec = content.embedding(model, t, dims)
        value: Any = vec if body.get("encoding_format") != "base64" else \
            base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = sum(content.count_words(t) for t in texts)
    usage = None if ex.omit_usage else {"prompt_tokens": tokens, "total_tokens": tokens}
    ex.entry.answer_usage = usage
    ex.entry.usage = None if usage is None else {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}
    payload: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if usage:
        payload["usage"] = usage
    return await ex.send_json(payload, 1)


# -- Responses API (https://platform.openai.com/docs/api-reference/responses) --------------------

def _validate_responses(body: dict[str, Any]) -> Optional[str]:
    if not isinstance(body.get("model"), str) or body.get("input") is None:
        return "model and input are required"
    for i, t in enumerate(body.get("tools") or []):
        if not isinstance(t, dict) or (t.get("type") == "function" and not isinstance(t.get("name"), str)):
            return f"tools[{i}].name is required for a function tool"
    fmt = (body.get("text") or {}).get("format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema")):
        return "text.format.type must be one of text, json_object, json_schema"
    v = body.get("max_output_tokens")
    if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 16):
        return "max_output_tokens must be an integer >= 16"
    return None


def _responses_ask(body: dict[str, Any]) -> Ask:
    prompt = content.prompt_text_responses(body)
    items = body["input"] if isinstance(body["input"], list) else []
    tools = [Tool(t["name"], t.get("parameters") or {}) for t in body.get("tools") or []
             if isinstance(t, dict) and t.get("type") == "function"]
    choice = body.get("tool_choice")
    fmt = (body.get("text") or {}).get("format") or {}
    json_mode: Any = True if fmt.get("type") == "json_object" else (fmt.get("schema") or True) \
        if fmt.get("type") == "json_schema" else False
    return Ask(model=body["model"], prompt=prompt, prompt_tokens=content.count_words(prompt) + 4,
               tools=tools, choice=choice if isinstance(choice, str) else "auto",
               forced=choice.get("name") if isinstance(choice, dict) else None,
               parallel=body.get("parallel_tool_calls") is not False,
               returning=bool(items) and isinstance(items[-1], dict) and items[-1].get("type") == "function_call_output",
               json=json_mode, max_tokens=body.get("max_output_tokens"))


async def responses(ex: Exchange, dialect: Dialect = OPENAI) -> web.StreamResponse:
    ended = await ex.admit(_validate_responses)
    if ended is not None:
        return ended
    body = ex.body
    ans = answer(_responses_ask(body), ex.fixed_content, ex.tokens(content.DEFAULT_TOKENS))
    usage = None if ex.omit_usage else {
        "input_tokens": ans.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": ans.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": ans.prompt_tokens + ans.completion_tokens}
    ex.settle(ans, usage)
    model, text = body["model"], ans.text
    rid, mid, created = "resp_" + secrets.token_hex(12), "msg_" + secrets.token_hex(12), int(time.time())
    incomplete = ans.finish == "length"
    fmt = (body.get("text") or {}).get("format") or {"type": "text"}

    def response_obj(status: str, output: list[Any], with_usage: bool) -> dict[str, Any]:
        return {"id": rid, "object": "response", "created_at": created, "status": status, "model": model,
                "output": output, "usage": usage if with_usage else None, "error": None,
                "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
                "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
                "parallel_tool_calls": body.get("parallel_tool_calls", True),
                "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
                "text": {"format": fmt}, "temperature": body.get("temperature", 1.0),
                "top_p": body.get("top_p", 1.0), "previous_response_id": body.get("previous_response_id"),
                "reasoning": {"effort": None, "summary": None}, "store": body.get("store", True),
                "truncation": "disabled", "user": None, "metadata": body.get("metadata") or {}}

    done_status = "incomplete" if incomplete else "completed"
    # logprobs: required by the spec's OutputTextContent, empty when not asked for
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    if ans.calls:
        items = [{"type": "function_call", "id": "fc_" + c.id, "call_id": "call_" + c.id, "name": c.name,
                  "arguments": c.arguments, "status": "completed"} for c in ans.calls]
    else:
        items = [{"type": "message", "id": mid, "status": done_status, "role": "assistant", "content": [part]}]
    if not body.get("stream"):
        return await ex.send_json(response_obj(done_status, items, True), max(1, len(ans.pieces)))

    seq = iter(range(1, 1_000_000))

    def ev(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

    frames: list[Frame] = [
        (ev("response.created", response=response_obj("in_progress", [], False)), False),
        (ev("response.in_progress", response=response_obj("in_progress", [], False)), False),
    ]
    if ans.calls:
        for i, item in enumerate(items):
            frames.append((ev("response.output_item.added", output_index=i,
                              item={**item, "arguments": "", "status": "in_progress"}), False))
            args = item["arguments"]
            frames += [(ev("response.function_call_arguments.delta", item_id=item["id"], output_index=i,
                           delta=args[j:j + 8]), True) for j in range(0, len(args), 8)]
            frames.append((ev("response.function_call_arguments.done", item_id=item["id"], output_index=i,
                              arguments=args), False))
            frames.append((ev("response.output_item.done", output_index=i, item=item), False))
    else:
        item = items[0]
        frames += [
            (ev("response.output_item.added", output_index=0, item={**item, "status": "in_progress", "content": []}), False),
            (ev("response.content_part.added", item_id=mid, output_index=0, content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []}), False),
        ]
        # logprobs: required by the spec's ResponseTextDeltaEvent / ResponseTextDoneEvent, empty when not asked for
        frames += [(ev("response.output_text.delta", item_id=mid, output_index=0, content_index=0, delta=t,
                       logprobs=[]), True) for t in ans.pieces]
        frames += [
            (ev("response.output_text.done", item_id=mid, output_index=0, content_index=0, text=text,
                logprobs=[]), False),
            (ev("response.content_part.done", item_id=mid, output_index=0, content_index=0, part=part), False),
            (ev("response.output_item.done", output_index=0, item=item), False),
        ]
    last = "response.incomplete" if incomplete else "response.completed"
    frames.append((ev(last, response=response_obj(done_status, items, True)), False))
    return await ex.send_stream(frames)


# -- models (https://platform.openai.com/docs/api-reference/models) -------------------------------

def models_payload(models: list[str], owned_by: str = "harness-mock") -> dict[str, Any]:
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 1700000000,
                                        "owned_by": owned_by} for m in models]}


def routes(dialect: Dialect = OPENAI, models: Optional[list[str]] = None, prefixes: tuple[str, ...] = ("/v1", "")) -> list[Route]:
    """Every OpenAI route, under each prefix (gateways differ on whether api_base carries /v1)."""
    listed = list(models or [])

    def bind(handler: Callable[..., Any]) -> Callable[[Exchange], Any]:
        async def serve(ex: Exchange) -> web.StreamResponse:
            return await handler(ex, dialect)
        return serve

    async def list_models(ex: Exchange) -> web.StreamResponse:
        return await ex.send_json(models_payload(listed, dialect.owned_by), 1)

    async def one_model(ex: Exchange) -> web.StreamResponse:
        name = ex.request.match_info["model"]
        if listed and name not in listed:
            return ex.reject(f"The model `{name}` does not exist or you do not have access to it.", 404)
        return await ex.send_json(models_payload([name], dialect.owned_by)["data"][0], 1)

    out: list[Route] = []
    for p in prefixes:
        out += [Route("POST", f"{p}/chat/completions", bind(chat_completions), CAN_ALL),
                Route("POST", f"{p}/responses", bind(responses), CAN_ALL),
                Route("POST", f"{p}/completions", bind(completions)),        # no tools, no JSON mode
                Route("POST", f"{p}/embeddings", bind(embeddings)),
                Route("GET", f"{p}/models", list_models),
                Route("GET", f"{p}/models/{{model}}", one_model)]
    return out
