"""Ollama-style local provider (native API): POST /api/chat, streamed as NDJSON (one JSON object
per line, `done: true` on the last with the counts), plus /api/tags listing the local models.
No API key: a local server. (llama.cpp's server and Ollama's /v1 speak chat completions: those
are `openai` providers.)
"""
from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from harness.mocks import content
from harness.mocks.exchange import Exchange, Frame


def error_shape(status: int, message: str) -> dict[str, Any]:
    return {"error": message}


def _validate(body: dict[str, Any]) -> str | None:
    if not isinstance(body.get("model"), str):
        return "model is required"
    msgs = body.get("messages")
    if not isinstance(msgs, list):
        return "messages: a list of {role, content} is required"
    for m in msgs:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool"):
            return f"invalid message role {m.get('role') if isinstance(m, dict) else m!r}"
        if not isinstance(m.get("content", ""), str):
            return "message content must be a string (images go in `images`)"
    return None


def tags_payload(models: list[str]) -> dict[str, Any]:
    return {"models": [{"name": m, "model": m, "size": 0, "details": {"format": "gguf"}} for m in models]}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


async def chat(ex: Exchange) -> web.StreamResponse:
    ended = await ex.admit(_validate)
    if ended is not None:
        return ended
    body = ex.body
    model, prompt = body["model"], content.prompt_text_openai(body)
    tokens = ex.answer_tokens(model, prompt)
    counts = {"prompt_eval_count": content.count_words(prompt) + 3 * len(body["messages"]), "eval_count": len(tokens)}
    ex.entry.answer_text = "".join(tokens)
    ex.entry.answer_usage = None if ex.omit_usage else counts
    done: dict[str, Any] = {"model": model, "created_at": _now(), "done": True, "done_reason": "stop",
                            "total_duration": 1000, **({} if ex.omit_usage else counts)}
    # Ollama streams unless told not to.
    if body.get("stream") is False:
        return await ex.send_json({**done, "message": {"role": "assistant", "content": "".join(tokens)}}, len(tokens))
    line = lambda obj: (json.dumps(obj) + "\n").encode()   # noqa: E731 - one NDJSON line
    frames: list[Frame] = [(line({"model": model, "created_at": _now(), "done": False,
                                  "message": {"role": "assistant", "content": t}}), True) for t in tokens]
    frames.append((line({**done, "message": {"role": "assistant", "content": ""}}), False))
    return await ex.send_stream(frames, content_type="application/x-ndjson")
