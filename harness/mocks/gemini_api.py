"""Gemini-style provider (Google AI Studio, generativelanguage API):
POST /v1beta/models/{model}:generateContent, and :streamGenerateContent?alt=sse for streams.

The model is in the path, not the body; the body is `contents` of `parts`, with an optional
`systemInstruction` and `generationConfig`. Answers are `candidates` with `usageMetadata`;
a stream is SSE `data:` events, each a partial GenerateContentResponse.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from harness.mocks import content
from harness.mocks.exchange import Exchange, Frame, sse


def error_shape(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
             429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
    return {"error": {"code": status, "message": message, "status": kinds.get(status, "INTERNAL")}}


def split_path(name: str) -> tuple[str, str]:
    """'gemini-2.0-flash:streamGenerateContent' -> (model, method)."""
    model, _, method = name.partition(":")
    return model, method


def _validate(body: dict[str, Any]) -> str | None:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "contents: field required (a list of {role, parts})"
    for i, c in enumerate(contents):
        if not isinstance(c, dict) or not isinstance(c.get("parts"), list):
            return f"contents[{i}].parts: field required"
        if c.get("role") not in (None, "user", "model", "function"):
            return f"contents[{i}].role: must be user or model, not {c.get('role')!r}"
    if "messages" in body:
        return "messages: unknown field (this is the Gemini API, not chat completions)"
    return None


def prompt_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    system = body.get("systemInstruction") or body.get("system_instruction") or {}
    for p in (system.get("parts") or []) if isinstance(system, dict) else []:
        if isinstance(p, dict) and "text" in p:
            parts.append(str(p["text"]))
    for c in body.get("contents") or []:
        if isinstance(c, dict):
            parts.append(" ".join(str(p.get("text", "")) for p in c.get("parts") or [] if isinstance(p, dict) and "text" in p))
    return "\n".join(p for p in parts if p)


async def generate(ex: Exchange, model: str, stream: bool) -> web.StreamResponse:
    ended = await ex.admit(_validate)
    if ended is not None:
        return ended
    body = ex.body
    prompt = prompt_text(body)
    tokens = ex.answer_tokens(model, prompt)
    in_tok = content.count_words(prompt) + 2 * len(body["contents"])
    usage = {"promptTokenCount": in_tok, "candidatesTokenCount": len(tokens), "totalTokenCount": in_tok + len(tokens)}
    ex.entry.answer_text = "".join(tokens)
    ex.entry.answer_usage = None if ex.omit_usage else usage

    def response(text: str, finish: bool, with_usage: bool) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        if finish:
            cand["finishReason"] = "STOP"
        out: dict[str, Any] = {"candidates": [cand], "modelVersion": model}
        if with_usage and not ex.omit_usage:
            out["usageMetadata"] = usage
        return out

    if not stream:
        return await ex.send_json(response("".join(tokens), True, True), len(tokens))
    frames: list[Frame] = [(sse(response(t, i == len(tokens) - 1, i == len(tokens) - 1)), True)
                           for i, t in enumerate(tokens)]
    return await ex.send_stream(frames)
