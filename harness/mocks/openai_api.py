"""OpenAI-style provider: /v1/chat/completions, /v1/responses, /v1/models."""
from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from harness.mocks import content
from harness.mocks.exchange import Exchange, Frame, sse


def error_shape(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 429: "rate_limit_error"}
    return {"error": {"message": message, "type": kinds.get(status, "server_error"),
                      "param": None, "code": None}}


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
# Numeric parameters and their allowed ranges, as OpenAI validates them (it answers 400 otherwise).
NUMBERS = {"temperature": (0, 2), "top_p": (0, 1), "presence_penalty": (-2, 2), "frequency_penalty": (-2, 2)}
INTEGERS = {"max_tokens": 1, "max_completion_tokens": 1, "n": 1, "seed": None}


def _validate_chat(body: dict[str, Any]) -> str | None:
    """As strict as OpenAI, so a gateway's laxness is not hidden behind a lax provider."""
    if not isinstance(body.get("model"), str):
        return "model is required"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "messages must be a non-empty list"
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return f"messages[{i}].role must be one of {sorted(ROLES)}"
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
    return None


def _tool_calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tools the mock 'decides' to call: none after a tool result, else the first one or two."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    choice = body.get("tool_choice")
    msgs = body.get("messages") or []
    if not tools or choice == "none" or (msgs and isinstance(msgs[-1], dict) and msgs[-1].get("role") == "tool"):
        return []
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        tools = [t for t in tools if (t.get("function") or {}).get("name") == name][:1]
    elif body.get("parallel_tool_calls") is False:
        tools = tools[:1]
    else:
        tools = tools[:2]
    return [{"id": "call_" + secrets.token_hex(12), "type": "function",
             "function": {"name": t["function"]["name"], "arguments": content.tool_arguments(t)}}
            for t in tools]


async def chat_completions(ex: Exchange) -> web.StreamResponse:
    ended = await ex.admit(_validate_chat)
    if ended is not None:
        return ended
    body = ex.body

    model, prompt = body["model"], content.prompt_text_openai(body)
    prompt_tokens = content.count_words(prompt) + 4 * len(body["messages"])
    calls = _tool_calls(body)
    rf = body.get("response_format") or {}
    if ex.fixed_content is not None:
        tokens = [ex.fixed_content[i:i + 4] for i in range(0, len(ex.fixed_content), 4)] or [""]
    elif isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"):
        tokens = content.json_tokens(model, prompt, ex.tokens(content.DEFAULT_TOKENS))
    else:
        tokens = content.text_tokens(model, prompt, ex.tokens(content.DEFAULT_TOKENS))
    completion_tokens = sum(len(c["function"]["arguments"]) // 4 + 1 for c in calls) if calls else len(tokens)
    usage = None if ex.omit_usage else _usage(prompt_tokens, completion_tokens)
    cid, created = "chatcmpl-" + secrets.token_hex(12), int(time.time())
    ex.entry.answer_text = "".join(c["function"]["arguments"] for c in calls) if calls else "".join(tokens)
    ex.entry.answer_usage = usage
    finish = "tool_calls" if calls else "stop"

    if not body.get("stream"):
        message: dict[str, Any] = {"role": "assistant", "content": None if calls else "".join(tokens),
                                   "refusal": None}
        if calls:
            message["tool_calls"] = calls
        payload: dict[str, Any] = {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        }
        if usage:
            payload["usage"] = usage
        return await ex.send_json(payload, len(tokens))

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        c: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created,
                             "model": model, "system_fingerprint": "fp_mock",
                             "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish_reason}]}
        if include_usage:
            c["usage"] = None  # OpenAI sends an explicit null on every chunk but the last
        return sse(c)

    frames: list[Frame] = [(chunk({"role": "assistant", "content": None if calls else ""}), False)]
    if calls:
        for i, call in enumerate(calls):
            frames.append((chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                                  "function": {"name": call["function"]["name"], "arguments": ""}}]}), True))
            args = call["function"]["arguments"]
            for j in range(0, len(args), 8):
                frames.append((chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j:j + 8]}}]}), True))
    else:
        frames += [(chunk({"content": t}), True) for t in tokens]
    frames.append((chunk({}, finish), False))
    if include_usage and usage:
        frames.append((sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                            "system_fingerprint": "fp_mock", "choices": [], "usage": usage}), False))
    frames.append((sse("[DONE]"), False))
    return await ex.send_stream(frames)


def _validate_responses(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("model"), str) or body.get("input") is None:
        return "model and input are required"
    return None


async def responses(ex: Exchange) -> web.StreamResponse:
    ended = await ex.admit(_validate_responses)
    if ended is not None:
        return ended
    body = ex.body
    model, prompt = body["model"], content.prompt_text_responses(body)
    tokens = content.text_tokens(model, prompt, ex.tokens(content.DEFAULT_TOKENS))
    if ex.fixed_content is not None:
        tokens = [ex.fixed_content]
    text = "".join(tokens)
    in_tok = content.count_words(prompt) + 4
    usage = None if ex.omit_usage else {"input_tokens": in_tok, "output_tokens": len(tokens),
                                        "total_tokens": in_tok + len(tokens)}
    ex.entry.answer_text, ex.entry.answer_usage = text, usage
    rid, mid, created = "resp_" + secrets.token_hex(12), "msg_" + secrets.token_hex(12), int(time.time())

    def response_obj(status: str, output: list[Any], with_usage: bool) -> dict[str, Any]:
        return {"id": rid, "object": "response", "created_at": created, "status": status, "model": model,
                "output": output, "usage": usage if with_usage else None, "error": None,
                "incomplete_details": None, "instructions": body.get("instructions"),
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "text": {"format": {"type": "text"}}}

    part = {"type": "output_text", "text": text, "annotations": []}
    item = {"type": "message", "id": mid, "status": "completed", "role": "assistant", "content": [part]}
    if not body.get("stream"):
        return await ex.send_json(response_obj("completed", [item], True), len(tokens))

    seq = iter(range(1, 1_000_000))

    def ev(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **fields}, event=kind)

    frames: list[Frame] = [
        (ev("response.created", response=response_obj("in_progress", [], False)), False),
        (ev("response.in_progress", response=response_obj("in_progress", [], False)), False),
        (ev("response.output_item.added", output_index=0,
            item={**item, "status": "in_progress", "content": []}), False),
        (ev("response.content_part.added", item_id=mid, output_index=0, content_index=0,
            part={"type": "output_text", "text": "", "annotations": []}), False),
    ]
    frames += [(ev("response.output_text.delta", item_id=mid, output_index=0, content_index=0, delta=t), True)
               for t in tokens]
    frames += [
        (ev("response.output_text.done", item_id=mid, output_index=0, content_index=0, text=text), False),
        (ev("response.content_part.done", item_id=mid, output_index=0, content_index=0, part=part), False),
        (ev("response.output_item.done", output_index=0, item=item), False),
        (ev("response.completed", response=response_obj("completed", [item], True)), False),
    ]
    return await ex.send_stream(frames)


def models_payload(models: list[str]) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 1700000000,
                                        "owned_by": "harness-mock"} for m in models]}


