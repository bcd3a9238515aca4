"""Ollama-style local provider, native API (https://github.com/ollama/ollama/blob/main/docs/api.md):
POST /api/chat and /api/generate (NDJSON streams unless `"stream": false`; the last line has
`done: true`, `done_reason` and the counts), /api/embed and the older /api/embeddings, GET /api/tags,
POST /api/show, GET /api/version and /api/ps; plus Ollama's OpenAI-compatible /v1 routes
(https://github.com/ollama/ollama/blob/main/docs/openai.md). No API key: a local server.

/api/chat takes tools (the model may call several at once) and `format` ("json" or a JSON schema);
/api/generate takes `format` but has no tools: a gateway that sends a chat with tools there can
only describe the tools in the prompt (LiteLLM's `ollama/` prefix does), which a mock cannot judge.
Options honoured: `num_predict` (done_reason "length") and `stop`. Unknown fields are ignored, as
Ollama's own JSON decoding does: /api/generate without a prompt just loads the model.
"""
from __future__ import annotations

import json
import time
from typing import Any, Optional

from aiohttp import web

from harness.mocks import content
from harness.mocks.answer import Answer, Ask, Tool, answer, stops
from harness.mocks.exchange import CAN_ALL, JSON_MODE, Exchange, Frame, Route
from harness.mocks.openai_api import Dialect, error_shape as openai_error_shape, routes as openai_routes

OPENAI_COMPAT = Dialect(name="ollama", error_shape=openai_error_shape, owned_by="library", fingerprint="fp_ollama",
                        usage=lambda p, c: {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
EMBEDDING_DIMS = 16
DURATIONS = {"total_duration": 1_000_000, "load_duration": 100_000, "prompt_eval_duration": 200_000,
             "eval_duration": 700_000}


def error_shape(status: int, message: str) -> dict[str, Any]:
    return {"error": message}


# Typed options, as Ollama's api.Options declares them; others are ignored (with a warning, there).
FLOAT_OPTIONS = {"temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty",
                 "frequency_penalty", "mirostat_tau", "mirostat_eta", "tfs_z"}
INT_OPTIONS = {"num_predict", "top_k", "repeat_last_n", "seed", "num_ctx", "num_batch", "num_gpu", "main_gpu",
               "num_thread", "num_keep", "mirostat"}


def _validate_format(body: dict[str, Any]) -> Optional[str]:
    fmt = body.get("format")
    if fmt not in (None, "", "json") and not isinstance(fmt, dict):
        return f"invalid format: {json.dumps(fmt)}; expected \"json\" or a valid JSON Schema"
    if body.get("options") is not None and not isinstance(body.get("options"), dict):
        return "options must be an object"
    return None


def bad_option(body: dict[str, Any]) -> Optional[str]:
    """Ollama loads `options` into typed fields when it schedules the model, and answers a wrong
    type with a 500 (handleScheduleError's default), not a 400."""
    for key, val in (body.get("options") or {}).items():
        if val is None:
            continue
        if key in FLOAT_OPTIONS and (isinstance(val, bool) or not isinstance(val, (int, float))):
            return f"option {key!r} must be of type float32".replace("'", '"')
        if key in INT_OPTIONS and (isinstance(val, bool) or not isinstance(val, (int, float))):
            return f"option {key!r} must be of type integer".replace("'", '"')
        if key == "stop" and not (isinstance(val, list) and all(isinstance(x, str) for x in val)):
            return 'option "stop" must be of an array of strings'
    return None


def _validate_chat(body: dict[str, Any]) -> Optional[str]:
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
    for t in body.get("tools") or []:
        if not (isinstance(t, dict) and isinstance((t.get("function") or {}).get("name"), str)):
            return "tools: each needs {type: function, function: {name, parameters}}"
    return _validate_format(body)


def _validate_generate(body: dict[str, Any]) -> Optional[str]:
    if not isinstance(body.get("model"), str):
        return "model is required"
    if body.get("prompt") is not None and not isinstance(body["prompt"], str):
        return "prompt must be a string"
    return _validate_format(body)


def _options(body: dict[str, Any]) -> tuple[Optional[int], list[str]]:
    opts = body.get("options") or {}
    n = opts.get("num_predict")
    return (n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None), stops(opts.get("stop"))


def _json(body: dict[str, Any]) -> Any:
    fmt = body.get("format")
    return fmt if isinstance(fmt, dict) else fmt == "json"


def tags_payload(models: list[str]) -> dict[str, Any]:
    return {"models": [{"name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z", "size": 0,
                        "digest": "0" * 64, "details": {"format": "gguf", "family": "llama", "families": ["llama"],
                                                        "parameter_size": "1B", "quantization_level": "Q4_0"}}
                       for m in models]}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def _counts(ans: Answer) -> dict[str, int]:
    return {"prompt_eval_count": ans.prompt_tokens, "eval_count": ans.completion_tokens}


def _final(ex: Exchange, model: str, ans: Answer) -> dict[str, Any]:
    return {"model": model, "created_at": _now(), "done": True, "done_reason": "length" if ans.finish == "length" else "stop",
            **DURATIONS, **({} if ex.omit_usage else _counts(ans))}


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj) + "\n").encode()


async def _loaded(ex: Exchange, model: str, chat: bool) -> web.StreamResponse:
    """An empty conversation (or prompt) only loads the model: one object, done_reason "load"."""
    out: dict[str, Any] = {"model": model, "created_at": _now(), "done": True, "done_reason": "load"}
    out.update({"message": {"role": "assistant", "content": ""}} if chat else {"response": ""})
    ex.entry.answer_text, ex.entry.finish = "", "load"
    return await ex.send_json(out, 1)


async def chat(ex: Exchange) -> web.StreamResponse:
    ended = await ex.admit(_validate_chat)
    if ended is not None:
        return ended
    body = ex.body
    model, msgs = body["model"], body["messages"]
    if bad_option(body):
        return ex.reject(bad_option(body) or "", 500)
    if not msgs:
        return await _loaded(ex, model, chat=True)
    prompt = content.prompt_text_openai(body)
    max_tokens, stop = _options(body)
    ask = Ask(model=model, prompt=prompt, prompt_tokens=content.count_words(prompt) + 3 * len(msgs),
              tools=[Tool(t["function"]["name"], t["function"].get("parameters") or {}) for t in body.get("tools") or []],
              returning=msgs[-1].get("role") == "tool", json=_json(body), max_tokens=max_tokens, stop=stop)
    ans = answer(ask, ex.fixed_content, ex.tokens(content.DEFAULT_TOKENS))
    ex.settle(ans, _counts(ans))
    calls = [{"function": {"name": c.name, "arguments": c.args}} for c in ans.calls]
    final = _final(ex, model, ans)
    if body.get("stream") is False:   # Ollama streams unless told not to
        message: dict[str, Any] = {"role": "assistant", "content": ans.text}
        if calls:
            message["tool_calls"] = calls
        return await ex.send_json({**final, "message": message}, max(1, len(ans.pieces)))
    frames: list[Frame] = [(_line({"model": model, "created_at": _now(), "done": False,
                                   "message": {"role": "assistant", "content": t}}), True) for t in ans.pieces]
    if calls:
        frames.append((_line({"model": model, "created_at": _now(), "done": False,
                              "message": {"role": "assistant", "content": "", "tool_calls": calls}}), True))
    frames.append((_line({**final, "message": {"role": "assistant", "content": ""}}), False))
    return await ex.send_stream(frames, content_type="application/x-ndjson")


async def generate(ex: Exchange) -> web.StreamResponse:
    ended = await ex.admit(_validate_generate)
    if ended is not None:
        return ended
    body = ex.body
    model = body["model"]
    if bad_option(body):
        return ex.reject(bad_option(body) or "", 500)
    if not body.get("prompt"):
        return await _loaded(ex, model, chat=False)
    prompt = "\n".join(p for p in (body.get("system"), body["prompt"]) if isinstance(p, str) and p)
    max_tokens, stop = _options(body)
    ask = Ask(model=model, prompt=prompt, prompt_tokens=content.count_words(prompt) + 3,
              json=_json(body), max_tokens=max_tokens, stop=stop)
    ans = answer(ask, ex.fixed_content, ex.tokens(content.DEFAULT_TOKENS))
    ex.settle(ans, _counts(ans))
    final = {**_final(ex, model, ans), "context": [1, 2, 3]}
    if body.get("stream") is False:
        return await ex.send_json({**final, "response": ans.text}, max(1, len(ans.pieces)))
    frames: list[Frame] = [(_line({"model": model, "created_at": _now(), "response": t, "done": False}), True)
                           for t in ans.pieces]
    frames.append((_line({**final, "response": ""}), False))
    return await ex.send_stream(frames, content_type="application/x-ndjson")


async def embed(ex: Exchange) -> web.StreamResponse:
    def validate(body: dict[str, Any]) -> Optional[str]:
        inp = body.get("input")
        if not isinstance(body.get("model"), str):
            return "model is required"
        if not (isinstance(inp, str) or (isinstance(inp, list) and inp and all(isinstance(x, str) for x in inp))):
            return "invalid input type"
        return None

    ended = await ex.admit(validate)
    if ended is not None:
        return ended
    texts = [ex.body["input"]] if isinstance(ex.body["input"], str) else ex.body["input"]
    model, dims = ex.body["model"], ex.body.get("dimensions") or EMBEDDING_DIMS
    n = sum(content.count_words(t) for t in texts)
    ex.entry.answer_usage = None if ex.omit_usage else {"prompt_eval_count": n}
    ex.entry.usage = None if ex.omit_usage else {"prompt_tokens": n, "completion_tokens": 0, "total_tokens": n}
    out: dict[str, Any] = {"model": model, "embeddings": [content.embedding(model, t, dims) for t in texts],
                           "total_duration": DURATIONS["total_duration"], "load_duration": DURATIONS["load_duration"]}
    if not ex.omit_usage:
        out["prompt_eval_count"] = n
    return await ex.send_json(out, 1)


async def embeddings_legacy(ex: Exchange) -> web.StreamResponse:
    def validate(body: dict[str, Any]) -> Optional[str]:
        return None if isinstance(body.get("model"), str) and isinstance(body.get("prompt"), str) else \
            "model and prompt are required"

    ended = await ex.admit(validate)
    if ended is not None:
        return ended
    return await ex.send_json({"embedding": content.embedding(ex.body["model"], ex.body["prompt"], EMBEDDING_DIMS)}, 1)


def _show(model: str) -> dict[str, Any]:
    # The template names .Tools: clients (LiteLLM among them) read that as "this model can call tools".
    template = ("{{ if .System }}<|system|>{{ .System }}{{ end }}{{ if .Tools }}<|tools|>{{ .Tools }}{{ end }}"
                "<|user|>{{ .Prompt }}<|assistant|>{{ .Response }}")
    return {"modelfile": f"FROM {model}\n", "parameters": "num_ctx 8192", "template": template,
            "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                        "parameter_size": "1B", "quantization_level": "Q4_0"},
            "model_info": {"general.architecture": "llama", "llama.context_length": 8192,
                           "llama.embedding_length": EMBEDDING_DIMS},
            "capabilities": ["completion", "tools"], "modified_at": "2025-01-01T00:00:00Z"}


def routes(models: list[str]) -> list[Route]:
    async def tags(ex: Exchange) -> web.StreamResponse:
        return await ex.send_json(tags_payload(models), 1)

    async def show(ex: Exchange) -> web.StreamResponse:
        def validate(body: dict[str, Any]) -> Optional[str]:
            return None if isinstance(body.get("model") or body.get("name"), str) else "model is required"

        ended = await ex.admit(validate)
        if ended is not None:
            return ended
        name = ex.body.get("model") or ex.body.get("name")
        if models and name not in models:
            return ex.reject(f"model '{name}' not found", 404)
        return await ex.send_json(_show(name), 1)

    async def version(ex: Exchange) -> web.StreamResponse:
        return await ex.send_json({"version": "0.6.0"}, 1)

    async def ps(ex: Exchange) -> web.StreamResponse:
        return await ex.send_json({"models": []}, 1)

    def streams_unless_told(request: web.Request, body: Any) -> tuple[Optional[str], Optional[bool]]:
        return None, not (isinstance(body, dict) and body.get("stream") is False)

    return [Route("POST", "/api/chat", chat, CAN_ALL, streams_unless_told),
            Route("POST", "/api/generate", generate, frozenset({JSON_MODE}), streams_unless_told),
            Route("POST", "/api/embed", embed),
            Route("POST", "/api/embeddings", embeddings_legacy),
            Route("GET", "/api/tags", tags),
            Route("POST", "/api/show", show),
            Route("GET", "/api/version", version),
            Route("GET", "/api/ps", ps),
            *openai_routes(OPENAI_COMPAT, models, ("/v1",))]
