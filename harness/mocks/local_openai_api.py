"""OpenAI-compatible local servers: llama.cpp's `llama-server` and vLLM's `vllm serve`.

Both serve OpenAI's routes (chat completions, legacy completions, embeddings, models; handlers in
openai_api) and differ from OpenAI in ways a gateway in front of them meets:
- llama.cpp (https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md): errors as
  {"error": {"code", "message", "type"}}, a `timings` object beside `usage`, no usage details,
  GET /health -> {"status": "ok"}, POST /tokenize; no API key unless started with --api-key.
- vLLM (https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html): errors as
  {"error": {"message", "type": "BadRequestError", "param", "code": 400}}, "tool_calls": [] on a
  plain answer, `parallel_tool_calls` ignored ("parallel_tool_calls and user parameters are
  ignored"), GET /health (200, empty), GET /version, POST /tokenize.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from harness.mocks import content
from harness.mocks.answer import Answer
from harness.mocks.exchange import Exchange, Route
from harness.mocks.openai_api import Dialect, routes as openai_routes

FLAVOURS = ("llamacpp", "vllm")


def llamacpp_error(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
             501: "not_supported_error", 503: "unavailable_error"}
    return {"error": {"code": status, "message": message, "type": kinds.get(status, "server_error")}}


def vllm_error(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError", 501: "NotImplementedError"}
    return {"error": {"message": message, "type": kinds.get(status, "InternalServerError"), "param": None,
                      "code": status}}


def _plain_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _vllm_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {**_plain_usage(prompt_tokens, completion_tokens), "prompt_tokens_details": None}


def _timings(payload: dict[str, Any], ans: Answer) -> None:
    """llama.cpp reports its own speed beside the usage (milliseconds, tokens per second)."""
    payload["timings"] = {"prompt_n": ans.prompt_tokens, "prompt_ms": 1.0, "prompt_per_token_ms": 0.1,
                          "prompt_per_second": 10000.0, "predicted_n": ans.completion_tokens, "predicted_ms": 2.0,
                          "predicted_per_token_ms": 0.2, "predicted_per_second": 5000.0}


def _vllm_fields(payload: dict[str, Any], ans: Answer) -> None:
    payload["prompt_logprobs"] = None
    for choice in payload.get("choices") or []:
        choice["stop_reason"] = None          # vLLM: the stop string or token that ended it, else null


DIALECTS = {
    "llamacpp": Dialect(name="llamacpp", error_shape=llamacpp_error, usage=_plain_usage, owned_by="llamacpp",
                        fingerprint="b1-mock", extra=_timings),
    "vllm": Dialect(name="vllm", error_shape=vllm_error, usage=_vllm_usage, owned_by="vllm", fingerprint=None,
                    honours_parallel_flag=False, empty_tool_calls=True, extra=_vllm_fields),
}


def error_shape_of(flavour: str):
    return DIALECTS[flavour].error_shape


def routes(flavour: str, models: list[str]) -> list[Route]:
    dialect = DIALECTS[flavour]

    async def health(ex: Exchange) -> web.StreamResponse:
        if flavour == "llamacpp":
            return await ex.send_json({"status": "ok"}, 1)
        ex.entry.status, ex.entry.completed = 200, True
        return web.Response(status=200)

    async def tokenize(ex: Exchange) -> web.StreamResponse:
        text = ex.body.get("content") if flavour == "llamacpp" else ex.body.get("prompt")
        if not isinstance(text, str):
            return ex.reject("content is required" if flavour == "llamacpp" else "prompt is required")
        ids = [content.WORDS.index(w) if w in content.WORDS else 0 for w in text.split()]
        return await ex.send_json({"tokens": ids} if flavour == "llamacpp" else
                                  {"count": len(ids), "max_model_len": 8192, "tokens": ids}, 1)

    async def version(ex: Exchange) -> web.StreamResponse:
        return await ex.send_json({"version": "0.0.0-harness-mock"}, 1)

    extra = [Route("GET", "/health", health), Route("POST", "/tokenize", tokenize)]
    if flavour == "vllm":
        extra.append(Route("GET", "/version", version))
    # llama.cpp answers with and without /v1; vLLM only under /v1.
    return openai_routes(dialect, models, ("/v1",) if flavour == "vllm" else ("/v1", "")) + extra
