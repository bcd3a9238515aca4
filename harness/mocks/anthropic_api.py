"""Anthropic-style provider: POST /v1/messages (plain and streamed), /v1/messages/count_tokens, and
GET /v1/models, as the Messages API documents them (https://docs.anthropic.com/en/api/messages,
/en/api/messages-count-tokens, /en/api/models-list; tool use:
https://docs.anthropic.com/en/docs/build-with-claude/tool-use; streaming:
https://docs.anthropic.com/en/docs/build-with-claude/streaming).

Tools and parallel tool_use blocks (unless `disable_parallel_tool_use`), `tool_choice` auto/any/
tool/none, `stop_sequences` and `max_tokens` (stop_reason stop_sequence / max_tokens), usage in
message_start and message_delta. The Messages API has no JSON mode: the route cannot offer one.
"""
from __future__ import annotations

import secrets
from typing import Any, Optional

from aiohttp import web

from harness.mocks import content
from harness.mocks.answer import Answer, Ask, Tool, answer, stops
from harness.mocks.exchange import PARALLEL_TOOLS, TOOLS, Exchange, Frame, Route, sse

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def error_shape(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
             404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
             529: "overloaded_error"}
    return {"type": "error", "error": {"type": kinds.get(status, "api_error"), "message": message},
            "request_id": "req_" + secrets.token_hex(12)}


def _validate_input(body: dict[str, Any]) -> Optional[str]:
    """What /v1/messages and /v1/messages/count_tokens both require of the conversation."""
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return "messages: Field required (a non-empty list)"
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role == "system":
            return (f"messages.{i}.role: Unexpected role \"system\". The Messages API accepts a top-level "
                    "`system` parameter, not \"system\" as an input message role.")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if not isinstance(m.get("content"), (str, list)):
            return f"messages.{i}.content: Field required"
    for i, t in enumerate(body.get("tools") or []):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or \
                ("type" not in t and not isinstance(t.get("input_schema"), dict)):
            return f"tools.{i}: a custom tool needs name and input_schema"
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            return "tool_choice.name: Field required"
    return None


def _validate(body: dict[str, Any]) -> Optional[str]:
    problem = _validate_input(body)
    if problem:
        return problem
    mt = body.get("max_tokens")
    if isinstance(mt, bool) or not isinstance(mt, int) or mt < 1:
        return "max_tokens: Field required (an integer >= 1)"
    t = body.get("temperature")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1):
        return "temperature: Input should be less than or equal to 1"
    ss = body.get("stop_sequences")
    if ss is not None and not (isinstance(ss, list) and all(isinstance(s, str) for s in ss)):
        return "stop_sequences: Input should be a valid list of strings"
    return None


def _needs_version(ex: Exchange) -> Optional[web.Response]:
    # The API refuses a request without the header; a gateway that forgets it must be seen to.
    if not ex.request.headers.get("anthropic-version"):
        return ex.reject("anthropic-version: header is required")
    return None


def input_tokens(body: dict[str, Any]) -> int:
    """The prompt's size: the same figure for count_tokens and for the usage of a message."""
    return content.count_words(content.prompt_text_anthropic(body)) + 3 * len(body["messages"]) \
        + 10 * len(body.get("tools") or [])


def _ask(body: dict[str, Any]) -> Ask:
    choice = body.get("tool_choice") or {}
    last = body["messages"][-1]
    returning = isinstance(last, dict) and isinstance(last.get("content"), list) and any(
        isinstance(p, dict) and p.get("type") == "tool_result" for p in last["content"])
    kind = choice.get("type", "auto")
    return Ask(model=body["model"], prompt=content.prompt_text_anthropic(body), prompt_tokens=input_tokens(body),
               tools=[Tool(t["name"], t.get("input_schema") or {}) for t in body.get("tools") or []
                      if isinstance(t, dict) and "name" in t],
               choice={"any": "required", "none": "none"}.get(kind, "auto"),
               forced=choice.get("name") if kind == "tool" else None,
               parallel=not choice.get("disable_parallel_tool_use", False), returning=returning,
               max_tokens=body["max_tokens"], stop=stops(body.get("stop_sequences")))


def _stop(ans: Answer) -> str:
    return "stop_sequence" if ans.stop_sequence else STOP_REASONS[ans.finish]


async def messages(ex: Exchange) -> web.StreamResponse:
    ended = await ex.admit(_validate)
    if ended is None:
        ended = _needs_version(ex)   # (a response is falsy, being an empty mapping: no `or` here)
    if ended is not None:
        return ended
    body = ex.body
    model = body["model"]
    ans = answer(_ask(body), ex.fixed_content, ex.tokens(content.DEFAULT_TOKENS))
    usage = {"input_tokens": ans.prompt_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
             "output_tokens": ans.completion_tokens}
    ex.settle(ans, usage)
    stop, mid = _stop(ans), "msg_" + secrets.token_hex(12)
    uses = [{"type": "tool_use", "id": "toolu_" + c.id, "name": c.name, "input": c.args} for c in ans.calls]
    blocks: list[dict[str, Any]] = uses or [{"type": "text", "text": ans.text}]

    if not body.get("stream"):
        msg: dict[str, Any] = {"id": mid, "type": "message", "role": "assistant", "model": model,
                               "content": blocks, "stop_reason": stop, "stop_sequence": ans.stop_sequence}
        if not ex.omit_usage:
            msg["usage"] = usage
        return await ex.send_json(msg, max(1, len(ans.pieces)))

    def ev(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, **fields}, event=kind)

    start_usage = {**usage, "output_tokens": 1}
    frames: list[Frame] = [(ev("message_start", message={
        "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, **({} if ex.omit_usage else {"usage": start_usage})}), False)]
    if uses:
        for i, use in enumerate(uses):
            frames.append((ev("content_block_start", index=i,
                              content_block={"type": "tool_use", "id": use["id"], "name": use["name"], "input": {}}), False))
            args = ans.calls[i].arguments
            frames += [(ev("content_block_delta", index=i, delta={"type": "input_json_delta", "partial_json": args[j:j + 8]}), True)
                       for j in range(0, len(args), 8)]
            frames.append((ev("content_block_stop", index=i), False))
    else:
        frames.append((ev("content_block_start", index=0, content_block={"type": "text", "text": ""}), False))
        frames.append((ev("ping"), False))
        frames += [(ev("content_block_delta", index=0, delta={"type": "text_delta", "text": t}), True) for t in ans.pieces]
        frames.append((ev("content_block_stop", index=0), False))
    delta_fields: dict[str, Any] = {"delta": {"stop_reason": stop, "stop_sequence": ans.stop_sequence}}
    if not ex.omit_usage:
        delta_fields["usage"] = {"output_tokens": ans.completion_tokens}
    frames.append((ev("message_delta", **delta_fields), False))
    frames.append((ev("message_stop"), False))
    return await ex.send_stream(frames)


async def count_tokens(ex: Exchange) -> web.StreamResponse:
    ended = await ex.admit(_validate_input)
    if ended is None:
        ended = _needs_version(ex)
    if ended is not None:
        return ended
    n = input_tokens(ex.body)
    ex.entry.answer_usage = {"input_tokens": n}
    ex.entry.usage = {"prompt_tokens": n, "completion_tokens": 0, "total_tokens": n}
    return await ex.send_json({"input_tokens": n}, 1)


def _model_obj(name: str) -> dict[str, Any]:
    return {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}


def routes(models: list[str]) -> list[Route]:
    async def list_models(ex: Exchange) -> web.StreamResponse:
        data = [_model_obj(m) for m in models]
        return await ex.send_json({"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                   "last_id": data[-1]["id"] if data else None}, 1)

    async def one_model(ex: Exchange) -> web.StreamResponse:
        name = ex.request.match_info["model"]
        if models and name not in models:
            return ex.reject(f"model: {name}", 404)
        return await ex.send_json(_model_obj(name), 1)

    return [Route("POST", "/v1/messages", messages, frozenset({TOOLS, PARALLEL_TOOLS})),
            Route("POST", "/v1/messages/count_tokens", count_tokens),
            Route("GET", "/v1/models", list_models),
            Route("GET", "/v1/models/{model}", one_model)]
