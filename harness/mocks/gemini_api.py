"""Gemini-style provider (Google AI Studio, generativelanguage API), under /v1beta and /v1:
POST models/{model}:generateContent, :streamGenerateContent (SSE with ?alt=sse, else one JSON array
sent piece by piece), :countTokens, :embedContent, :batchEmbedContents; GET models, models/{model}.

As documented: https://ai.google.dev/api/generate-content, function calling
https://ai.google.dev/gemini-api/docs/function-calling, JSON mode / structured output
https://ai.google.dev/gemini-api/docs/structured-output, https://ai.google.dev/api/tokens,
https://ai.google.dev/api/embeddings, https://ai.google.dev/api/models. The model is in the path;
the body is `contents` of `parts`, with `systemInstruction`, `tools` (functionDeclarations),
`toolConfig` and `generationConfig` (maxOutputTokens, stopSequences, responseMimeType,
responseSchema). Field names are read in both spellings protobuf's JSON mapping accepts
(generationConfig and generation_config).
"""
from __future__ import annotations

import json
import re
import secrets
from typing import Any, Optional

from aiohttp import web

from harness.mocks import content
from harness.mocks.answer import Answer, Ask, Tool, answer
from harness.mocks.exchange import CAN_ALL, Exchange, Frame, Route, sse

FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}   # a function call ends with STOP
EMBEDDING_DIMS = 16
VERSIONS = ("/v1beta", "/v1")
MODEL = "{model:[^/:]+}"


def error_shape(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
             429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
    return {"error": {"code": status, "message": message, "status": kinds.get(status, "INTERNAL")}}


def f(obj: Any, camel: str) -> Any:
    """A field in either spelling: generationConfig or generation_config."""
    if not isinstance(obj, dict):
        return None
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel))


def _validate_contents(contents: Any) -> Optional[str]:
    if not isinstance(contents, list) or not contents:
        return "contents: field required (a list of {role, parts})"
    for i, c in enumerate(contents):
        if not isinstance(c, dict) or not isinstance(c.get("parts"), list):
            return f"contents[{i}].parts: field required"
        if c.get("role") not in (None, "user", "model", "function"):
            return f"contents[{i}].role: must be user or model, not {c.get('role')!r}"
    return None


def _validate(body: dict[str, Any]) -> Optional[str]:
    if "messages" in body:
        return "Invalid JSON payload received. Unknown name \"messages\": Cannot find field."
    problem = _validate_contents(body.get("contents"))
    if problem:
        return problem
    for i, t in enumerate(body.get("tools") or []):
        for j, d in enumerate(f(t, "functionDeclarations") or []):
            if not isinstance(d, dict) or not isinstance(d.get("name"), str):
                return f"tools[{i}].function_declarations[{j}].name: field required"
    mode = f(f(body.get("toolConfig") or body.get("tool_config"), "functionCallingConfig"), "mode")
    if mode is not None and mode not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
        return f"tool_config.function_calling_config.mode: invalid value {mode!r}"
    gc = f(body, "generationConfig") or {}
    mime = f(gc, "responseMimeType")
    if mime is not None and mime not in ("text/plain", "application/json", "text/x.enum"):
        return f"generation_config.response_mime_type: unsupported value {mime!r}"
    if (f(gc, "responseSchema") or f(gc, "responseJsonSchema")) and mime != "application/json":
        return "generation_config.response_schema requires response_mime_type application/json"
    return None


def prompt_text(body: dict[str, Any]) -> str:
    parts: list[str] = []
    system = f(body, "systemInstruction") or {}
    for p in (system.get("parts") or []) if isinstance(system, dict) else []:
        if isinstance(p, dict) and "text" in p:
            parts.append(str(p["text"]))
    for c in body.get("contents") or []:
        if isinstance(c, dict):
            parts.append(" ".join(str(p.get("text", "")) for p in c.get("parts") or [] if isinstance(p, dict) and "text" in p))
    return "\n".join(p for p in parts if p)


def prompt_tokens(body: dict[str, Any]) -> int:
    """The prompt's size: the same figure for countTokens and for usageMetadata."""
    return content.count_words(prompt_text(body)) + 2 * len(body.get("contents") or [])


def _ask(model: str, body: dict[str, Any]) -> Ask:
    tools = [Tool(d["name"], d.get("parameters") or f(d, "parametersJsonSchema") or {})
             for t in body.get("tools") or [] for d in f(t, "functionDeclarations") or []]
    fcc = f(f(body, "toolConfig"), "functionCallingConfig") or {}
    mode, allowed = f(fcc, "mode"), f(fcc, "allowedFunctionNames") or []
    last = body["contents"][-1]
    returning = any(isinstance(p, dict) and f(p, "functionResponse") for p in last.get("parts") or [])
    gc = f(body, "generationConfig") or {}
    json_mode: Any = False
    if f(gc, "responseMimeType") == "application/json":
        json_mode = f(gc, "responseSchema") or f(gc, "responseJsonSchema") or True
    stop = f(gc, "stopSequences")
    return Ask(model=model, prompt=prompt_text(body), prompt_tokens=prompt_tokens(body), tools=tools,
               choice={"ANY": "required", "NONE": "none"}.get(mode, "auto"),
               forced=allowed[0] if mode == "ANY" and len(allowed) == 1 else None,
               returning=returning, json=json_mode, max_tokens=f(gc, "maxOutputTokens"),
               stop=[s for s in stop if isinstance(s, str)] if isinstance(stop, list) else [])


def _usage(ans: Answer, completion: bool = True) -> dict[str, Any]:
    out = ans.completion_tokens if completion else 0
    return {"promptTokenCount": ans.prompt_tokens, "candidatesTokenCount": out,
            "totalTokenCount": ans.prompt_tokens + out,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": ans.prompt_tokens}]}


async def generate(ex: Exchange, model: str, stream: bool, sse_form: bool = True) -> web.StreamResponse:
    ended = await ex.admit(_validate)
    if ended is not None:
        return ended
    body = ex.body
    ans = answer(_ask(model, body), ex.fixed_content, ex.tokens(content.DEFAULT_TOKENS))
    ex.settle(ans, _usage(ans))
    rid = secrets.token_hex(10)

    def response(parts: list[dict[str, Any]], finish: bool) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            cand["finishReason"] = FINISH[ans.finish]
        out: dict[str, Any] = {"candidates": [cand], "modelVersion": model, "responseId": rid}
        if finish and not ex.omit_usage:
            out["usageMetadata"] = _usage(ans)
        return out

    calls = [{"functionCall": {"name": c.name, "args": c.args}} for c in ans.calls]
    if not stream:
        return await ex.send_json(response(calls or [{"text": ans.text}], True), max(1, len(ans.pieces)))
    pieces = [response(calls, True)] if calls else \
        [response([{"text": t}], i == len(ans.pieces) - 1) for i, t in enumerate(ans.pieces or [""])]
    if sse_form:
        return await ex.send_stream([(sse(p), True) for p in pieces])
    # Without alt=sse the stream is one JSON array whose elements arrive as they are generated.
    frames: list[Frame] = [((("[" if i == 0 else ",\r\n") + json.dumps(p)).encode(), True) for i, p in enumerate(pieces)]
    frames.append((b"]", False))
    return await ex.send_stream(frames, content_type="application/json")


async def count_tokens(ex: Exchange) -> web.StreamResponse:
    def validate(body: dict[str, Any]) -> Optional[str]:
        inner = f(body, "generateContentRequest")
        return _validate_contents((inner if isinstance(inner, dict) else body).get("contents"))

    ended = await ex.admit(validate)
    if ended is not None:
        return ended
    inner = f(ex.body, "generateContentRequest")
    n = prompt_tokens(inner if isinstance(inner, dict) else ex.body)
    ex.entry.answer_usage = {"totalTokens": n}
    ex.entry.usage = {"prompt_tokens": n, "completion_tokens": 0, "total_tokens": n}
    return await ex.send_json({"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}, 1)


def _embed_one(model: str, req: Any) -> Optional[list[float]]:
    texts = [str(p.get("text", "")) for p in (f(req, "content") or {}).get("parts") or [] if isinstance(p, dict)]
    if not texts:
        return None
    return content.embedding(model, " ".join(texts), f(req, "outputDimensionality") or EMBEDDING_DIMS)


async def embed(ex: Exchange, model: str, batch: bool) -> web.StreamResponse:
    def validate(body: dict[str, Any]) -> Optional[str]:
        reqs = body.get("requests") if batch else [body]
        if not isinstance(reqs, list) or not reqs:
            return "requests: field required"
        if any(_embed_one(model, r) is None for r in reqs):
            return "content.parts: at least one text part is required"
        return None

    ended = await ex.admit(validate)
    if ended is not None:
        return ended
    reqs = ex.body["requests"] if batch else [ex.body]
    vectors = [_embed_one(model, r) for r in reqs]
    if batch:
        return await ex.send_json({"embeddings": [{"values": v} for v in vectors]}, 1)
    return await ex.send_json({"embedding": {"values": vectors[0]}}, 1)


def _model_obj(name: str) -> dict[str, Any]:
    return {"name": f"models/{name}", "version": "001", "displayName": name, "description": "harness mock model",
            "inputTokenLimit": 1048576, "outputTokenLimit": 8192,
            "supportedGenerationMethods": ["generateContent", "countTokens", "embedContent", "batchEmbedContents"]}


def _in_path(request: web.Request, body: Any) -> tuple[Optional[str], Optional[bool]]:
    return request.match_info.get("model"), request.path.endswith(":streamGenerateContent")


def routes(models: list[str]) -> list[Route]:
    async def plain(ex: Exchange) -> web.StreamResponse:
        return await generate(ex, ex.request.match_info["model"], False)

    async def streamed(ex: Exchange) -> web.StreamResponse:
        return await generate(ex, ex.request.match_info["model"], True, ex.request.query.get("alt") == "sse")

    async def embed_content(ex: Exchange) -> web.StreamResponse:
        return await embed(ex, ex.request.match_info["model"], False)

    async def batch_embed(ex: Exchange) -> web.StreamResponse:
        return await embed(ex, ex.request.match_info["model"], True)

    async def list_models(ex: Exchange) -> web.StreamResponse:
        return await ex.send_json({"models": [_model_obj(m) for m in models]}, 1)

    async def one_model(ex: Exchange) -> web.StreamResponse:
        name = ex.request.match_info["model"]
        if models and name not in models:
            return ex.reject(f"models/{name} is not found for API version v1beta", 404)
        return await ex.send_json(_model_obj(name), 1)

    out: list[Route] = []
    for v in VERSIONS:
        out += [Route("POST", f"{v}/models/{MODEL}:generateContent", plain, CAN_ALL, _in_path),
                Route("POST", f"{v}/models/{MODEL}:streamGenerateContent", streamed, CAN_ALL, _in_path),
                Route("POST", f"{v}/models/{MODEL}:countTokens", count_tokens, locate=_in_path),
                Route("POST", f"{v}/models/{MODEL}:embedContent", embed_content, locate=_in_path),
                Route("POST", f"{v}/models/{MODEL}:batchEmbedContents", batch_embed, locate=_in_path),
                Route("GET", f"{v}/models", list_models),
                Route("GET", f"{v}/models/{MODEL}", one_model)]
    return out
