"""Anthropic-style provider: /v1/messages, plain and streamed (message_start ... message_stop)."""
from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web

from harness.mocks import content
from harness.mocks.exchange import Exchange, Frame, sse


def error_shape(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
             529: "overloaded_error"}
    return {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": message}}


def _validate(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("model"), str):
        return "model: field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: field required"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "messages: field required"
    return None


def _tool_uses(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]
    msgs = body.get("messages") or []
    last = msgs[-1] if msgs and isinstance(msgs[-1], dict) else {}
    returning = isinstance(last.get("content"), list) and any(
        isinstance(p, dict) and p.get("type") == "tool_result" for p in last["content"])
    if not tools or returning or (body.get("tool_choice") or {}).get("type") == "none":
        return []
    return [{"type": "tool_use", "id": "toolu_" + secrets.token_hex(12), "name": tools[0]["name"],
             "input": json.loads(content.tool_arguments(tools[0]))}]


async def messages(ex: Exchange) -> web.StreamResponse:
    ended = await ex.admit(_validate)
    if ended is not None:
        return ended
    body = ex.body
    model, prompt = body["model"], content.prompt_text_anthropic(body)
    tokens = ex.answer_tokens(model, prompt)
    uses = _tool_uses(body)
    in_tok = content.count_words(prompt) + 3 * len(body["messages"])
    out_tok = len(tokens) if not uses else 8
    stop = "tool_use" if uses else "end_turn"
    mid = "msg_" + secrets.token_hex(12)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": "".join(tokens)}] if not uses else uses
    usage = {"input_tokens": in_tok, "output_tokens": out_tok}
    ex.entry.answer_text = "".join(tokens) if not uses else json.dumps(uses[0]["input"])
    ex.entry.answer_usage = None if ex.omit_usage else usage

    if not body.get("stream"):
        msg: dict[str, Any] = {"id": mid, "type": "message", "role": "assistant", "model": model,
                               "content": blocks, "stop_reason": stop, "stop_sequence": None}
        if not ex.omit_usage:
            msg["usage"] = usage
        return await ex.send_json(msg, len(tokens))

    def ev(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, **fields}, event=kind)

    start_usage = {"input_tokens": in_tok, "output_tokens": 1}
    frames: list[Frame] = [(ev("message_start", message={
        "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, **({} if ex.omit_usage else {"usage": start_usage})}), False)]
    if uses:
        for i, use in enumerate(uses):
            frames.append((ev("content_block_start", index=i,
                              content_block={"type": "tool_use", "id": use["id"], "name": use["name"], "input": {}}), False))
            args = json.dumps(use["input"])
            frames += [(ev("content_block_delta", index=i, delta={"type": "input_json_delta", "partial_json": args[j:j + 8]}), True)
                       for j in range(0, len(args), 8)]
            frames.append((ev("content_block_stop", index=i), False))
    else:
        frames.append((ev("content_block_start", index=0, content_block={"type": "text", "text": ""}), False))
        frames.append((ev("ping"), False))
        frames += [(ev("content_block_delta", index=0, delta={"type": "text_delta", "text": t}), True) for t in tokens]
        frames.append((ev("content_block_stop", index=0), False))
    delta_fields: dict[str, Any] = {"delta": {"stop_reason": stop, "stop_sequence": None}}
    if not ex.omit_usage:
        delta_fields["usage"] = {"output_tokens": out_tok}
    frames.append((ev("message_delta", **delta_fields), False))
    frames.append((ev("message_stop"), False))
    return await ex.send_stream(frames)
