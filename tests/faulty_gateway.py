"""A small, deliberately faulty LLM gateway: test equipment for the harness's resilience checks.

It keeps every promise a harness.yaml can state (failover policy, retries with backoff and
Retry-After, timeouts, a half-open breaker, rate limits, a cache, idempotency keys, auth, usage
estimates) and has one switch per promise that breaks it, so each check can be shown to PASS when
the promise is kept and to FAIL when it is broken. It is never a product target.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional

import aiohttp
from aiohttp import web

BREAKS = {
    "failover_on_client_errors", "failover_garbage", "failover_leaks_error", "chain_reversed", "error_not_openai_shaped",
    "double_backup", "hedge", "model_names_primary", "failover_usage_doubled", "metadata_wrong",
    "extra_retry", "retry_client_errors", "no_retry", "no_backoff", "ignore_retry_after", "hammer",
    "no_timeout", "timeout_too_short", "stream_fake_complete",
    "breaker_opens_early", "breaker_never_opens", "breaker_never_closes", "breaker_no_half_open",
    "breaker_global", "breaker_window_count", "cooling_refusal_wrong",
    "auth_missing_passes", "auth_any_key", "revoked_accepted", "expired_accepted",
    "rate_limit_early", "no_rate_limit", "no_ratelimit_headers", "rate_limit_after_forward",
    "rate_limit_never_resets",
    "no_cache", "cache_ignores_model", "cache_ignores_messages", "cache_ignores_temperature",
    "cache_never_expires", "cache_stream_mismatch",
    "idempotency_ignored", "idempotency_ignores_key", "no_usage_estimate",
    "sse_per_read", "pass_malformed", "keep_upstream_after_disconnect", "ws_keep_upstream",
}


@dataclass
class Spec:
    deployments: dict[str, tuple[str, str]]           # model -> (provider base URL, upstream model)
    fallbacks: dict[str, list[str]]
    keys: set[str]
    revoked: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    failover_on: set[int] = field(default_factory=lambda: {408, 429, 500, 502, 503, 504})
    retries: int = 1
    retry_on: set[int] = field(default_factory=lambda: {408, 429, 500, 502, 503, 504})
    backoff_s: float = 0.2
    timeout_s: float = 1.0
    stream_timeout_s: float = 1.0
    opens_after: int = 3
    cooldown_s: float = 1.5
    rpm: int = 3
    window_s: float = 2.0
    rate_limited: set[str] = field(default_factory=set)
    cache_ttl_s: float = 1.0
    cached: set[str] = field(default_factory=set)
    breaks: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        unknown = self.breaks - BREAKS
        if unknown:
            raise ValueError(f"unknown break switch(es): {sorted(unknown)}")


class Fault(Exception):
    def __init__(self, status: int, body: bytes = b"", retry_after: Optional[float] = None) -> None:
        self.status, self.body, self.retry_after = status, body, retry_after


class Breaker:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.fails: dict[str, int] = defaultdict(int)
        self.opened: dict[str, float] = {}
        self.trial: set[str] = set()

    def _key(self, model: str) -> str:
        return model

    def allows(self, model: str) -> bool:
        k, s = self._key(model), self.spec
        now = time.monotonic()
        if "breaker_global" in s.breaks and k not in self.opened and any(
                now - t < s.cooldown_s for t in self.opened.values()):
            return False    # broken: one open breaker blocks every provider
        if k not in self.opened or "breaker_never_opens" in s.breaks:
            return True
        if "breaker_never_closes" in s.breaks:
            return False
        if time.monotonic() - self.opened[k] >= s.cooldown_s:
            if "breaker_no_half_open" in s.breaks:
                del self.opened[k]
                self.fails[k] = 0
            else:
                self.trial.add(k)       # half-open: this request is the trial
            return True
        return False

    def failure(self, model: str) -> None:
        k, s = self._key(model), self.spec
        threshold = s.opens_after - (1 if "breaker_opens_early" in s.breaks else 0)
        self.fails[k] += 1
        if k in self.trial or self.fails[k] >= threshold:
            self.trial.discard(k)
            self.opened[k] = time.monotonic()

    def success(self, model: str) -> None:
        k = self._key(model)
        self.trial.discard(k)
        self.opened.pop(k, None)
        if "breaker_window_count" not in self.spec.breaks:
            self.fails[k] = 0


class Gateway:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.breaker = Breaker(spec)
        self.windows: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self.idem: dict[str, bytes] = {}
        self.session: Optional[aiohttp.ClientSession] = None

    # -- plumbing ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/v1/realtime", self.realtime)
        app.router.add_get("/health", self.health)
        return app

    async def realtime(self, request: web.Request) -> web.StreamResponse:
        """Forwards a realtime websocket to the model's provider, both ways."""
        model = request.query.get("model", "")
        if model not in self.spec.deployments:
            return self.error(404, f"unknown model {model}")
        base, upstream = self.spec.deployments[model]
        client = web.WebSocketResponse()
        await client.prepare(request)
        assert self.session is not None
        async with self.session.ws_connect(base.replace("http", "ws", 1) + f"/v1/realtime?model={upstream}") as up:
            async def down() -> None:
                async for msg in up:
                    if msg.type == aiohttp.WSMsgType.TEXT and not client.closed:
                        await client.send_str(msg.data)
            pump = asyncio.ensure_future(down())
            async for msg in client:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await up.send_str(msg.data)
            if "ws_keep_upstream" in self.spec.breaks:
                await asyncio.sleep(5)   # broken: the provider's stream runs on for nobody
            pump.cancel()
        return client

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in self.spec.deployments]})

    @staticmethod
    def error(status: int, message: str, headers: Optional[dict[str, str]] = None) -> web.Response:
        return web.json_response({"error": {"message": message, "type": "gateway_error"}}, status=status,
                                 headers=headers)

    # -- request path --------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.StreamResponse:
        s = self.spec
        auth = request.headers.get("Authorization", "")
        key = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not key and "auth_missing_passes" not in s.breaks:
            return self.error(401, "missing key")
        if key and key not in s.keys and "auth_any_key" not in s.breaks:
            if not ((key in s.revoked and "revoked_accepted" in s.breaks)
                    or (key in s.expired and "expired_accepted" in s.breaks)):
                return self.error(401, "invalid key")
        try:
            body = await request.json()
            model = body["model"]
        except (ValueError, KeyError, TypeError):
            return self.error(400, "invalid body")
        if model not in s.deployments:
            return self.error(404, f"unknown model {model}")

        limited = await self.rate_limit(key, model, body)
        if limited is not None:
            return limited

        idem = request.headers.get("Idempotency-Key")
        idem_key = None
        if idem and "idempotency_ignored" not in s.breaks:
            idem_key = "same" if "idempotency_ignores_key" in s.breaks else idem
            if idem_key in self.idem:
                return web.Response(body=self.idem[idem_key], content_type="application/json")

        cache_key = self.cache_key(body) if model in s.cached and "no_cache" not in s.breaks else None
        if cache_key and cache_key in self.cache:
            t, answer = self.cache[cache_key]
            if "cache_never_expires" in s.breaks or time.monotonic() - t < s.cache_ttl_s:
                if body.get("stream"):
                    return await self.stream_from(request, answer, mismatch="cache_stream_mismatch" in s.breaks)
                return web.json_response(answer)

        if body.get("stream"):
            return await self.route_stream(request, model, body)
        status, answer, headers = await self.route(model, body)
        if status == 200 and cache_key:
            self.cache[cache_key] = (time.monotonic(), answer)
        raw = json.dumps(answer).encode()
        if status == 200 and idem_key:
            self.idem[idem_key] = raw
        return web.Response(body=raw, status=status, content_type="application/json", headers=headers)

    async def rate_limit(self, key: str, model: str, body: dict[str, Any]) -> Optional[web.Response]:
        s = self.spec
        if model not in s.rate_limited or "no_rate_limit" in s.breaks:
            return None
        now, window = time.monotonic(), self.windows[(key, model)]
        if "rate_limit_never_resets" not in s.breaks:
            window[:] = [t for t in window if now - t < s.window_s]
        limit = s.rpm - (1 if "rate_limit_early" in s.breaks else 0)
        if len(window) >= limit:
            if "rate_limit_after_forward" in s.breaks:
                await self.try_call(model, body)
            headers = {} if "no_ratelimit_headers" in s.breaks else {
                "retry-after": str(max(1, int(s.window_s))), "x-ratelimit-limit-requests": str(s.rpm),
                "x-ratelimit-remaining-requests": "0"}
            return self.error(429, "rate limited", headers)
        window.append(now)
        return None

    def cache_key(self, body: dict[str, Any]) -> str:
        parts = {k: body.get(k) for k in ("model", "messages", "temperature")}
        for field_, switch in (("model", "cache_ignores_model"), ("messages", "cache_ignores_messages"),
                               ("temperature", "cache_ignores_temperature")):
            if switch in self.spec.breaks:
                parts.pop(field_)
        if "cache_ignores_messages" in self.spec.breaks:
            # Keep only the harness tag so checks stay apart, as a sloppy key on a prefix would.
            text = json.dumps(body.get("messages"))
            parts["tag"] = text[text.find("[h:"):text.find("]", text.find("[h:")) + 1]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def chain(self, model: str) -> list[str]:
        rest = list(self.spec.fallbacks.get(model, []))
        if "chain_reversed" in self.spec.breaks:
            rest.reverse()
        return [model] + rest

    async def route(self, model: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Tries the chain: retries on the same model, then failover, as promised (or broken)."""
        s = self.spec
        last: Fault = Fault(503, b"no deployment available")
        usage_sum = 0
        if "hedge" in s.breaks and len(self.chain(model)) > 1:
            await self.try_call(self.chain(model)[1], body)
        allowed = [m for m in self.chain(model) if self.breaker.allows(m)]
        if not allowed:   # every deployment cooling down: refused at once, saying when to come back
            if "cooling_refusal_wrong" in s.breaks:
                return 503, {"error": {"message": "no deployment available", "type": "upstream_error"}}, {}
            return 429, {"error": {"message": "every deployment is cooling down", "type": "rate_limit_error"}}, {
                "Retry-After": str(max(1, round(s.cooldown_s)))}
        for i, m in enumerate(self.chain(model)):
            if not self.breaker.allows(m):
                continue
            retries = s.retries + (1 if "extra_retry" in s.breaks else 0)
            retries = retries * 5 if "hammer" in s.breaks else retries
            retries = 0 if "no_retry" in s.breaks else retries
            for attempt in range(retries + 1):
                if attempt and not self.breaker.allows(m):
                    break   # the failure before this retry opened the breaker
                try:
                    answer = await self.call(m, body)
                except Fault as f:
                    last = f
                    self.breaker.failure(m)
                    retryable = f.status in s.retry_on or ("retry_client_errors" in s.breaks and 400 <= f.status < 500)
                    if attempt == retries or not retryable:
                        break
                    wait = 0.0 if "no_backoff" in s.breaks else s.backoff_s
                    if f.retry_after and "ignore_retry_after" not in s.breaks:
                        wait = max(wait, f.retry_after)
                    await asyncio.sleep(wait)
                    continue
                self.breaker.success(m)
                if i > 0 and "double_backup" in s.breaks:
                    await self.try_call(m, body)
                return 200, self.finish(answer, model, m, i > 0, usage_sum), self.meta(model if "metadata_wrong" in s.breaks else m)
            fails_over = last.status in s.failover_on or (
                "failover_on_client_errors" in s.breaks and 400 <= last.status < 500)
            if not fails_over:
                if "error_not_openai_shaped" in s.breaks:   # an error a client written for the API cannot read
                    return last.status, {"detail": f"upstream {last.status}"}, {}
                return last.status, {"error": {"message": f"upstream {last.status}", "type": "upstream_error"}}, {}
            usage_sum += 10
        return last.status if last.status >= 500 else 503, {"error": {"message": "all providers failed", "type": "upstream_error"}}, {}

    def finish(self, answer: dict[str, Any], requested: str, answering: str, failed_over: bool, extra: int) -> dict[str, Any]:
        s = self.spec
        answer = dict(answer)
        answer["model"] = requested if "model_names_primary" in s.breaks else answering
        if "usage" not in answer and "no_usage_estimate" not in s.breaks:
            text = answer["choices"][0]["message"].get("content") or ""
            answer["usage"] = {"prompt_tokens": 5, "completion_tokens": len(text.split()),
                               "total_tokens": 5 + len(text.split())}
        if failed_over and "failover_usage_doubled" in s.breaks and "usage" in answer:
            u = answer["usage"]
            answer["usage"] = {k: v * 2 for k, v in u.items()}
        if failed_over and "failover_leaks_error" in s.breaks:
            answer["error"] = {"message": "primary failed"}
        if failed_over and "failover_garbage" in s.breaks:
            answer = {"partial": True}
        return answer

    def meta(self, model: str) -> dict[str, str]:
        return {"x-gw-api-base": self.spec.deployments[model][0]}

    async def try_call(self, model: str, body: dict[str, Any]) -> None:
        try:
            await self.call(model, body)
        except Fault:
            pass

    async def call(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        s = self.spec
        base, upstream = s.deployments[model]
        timeout = s.timeout_s * (0.2 if "timeout_too_short" in s.breaks else 1)
        total = None if "no_timeout" in s.breaks else timeout
        assert self.session is not None
        try:
            async with self.session.post(f"{base}/v1/chat/completions", json={**body, "model": upstream, "stream": False},
                                         timeout=aiohttp.ClientTimeout(total=total)) as r:
                raw = await r.read()
                if r.status != 200:
                    ra = r.headers.get("Retry-After")
                    raise Fault(r.status, raw, float(ra) if ra else None)
                return json.loads(raw)
        except asyncio.TimeoutError:
            raise Fault(504, b"upstream timeout") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ValueError):
            raise Fault(502, b"upstream connection failed") from None

    async def route_stream(self, request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
        """Streams from the first deployment that answers 200; failover happens before the first byte."""
        s = self.spec
        assert self.session is not None
        for i, m in enumerate(self.chain(model)):
            base, upstream = s.deployments[m]
            try:
                upstream_resp = await self.session.post(
                    f"{base}/v1/chat/completions", json={**body, "model": upstream},
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=None if "no_timeout" in s.breaks else
                                                  s.stream_timeout_s * (0.2 if "timeout_too_short" in s.breaks else 1)))
            except (aiohttp.ClientError, asyncio.TimeoutError):
                continue
            if upstream_resp.status != 200:
                status = upstream_resp.status
                upstream_resp.release()
                if status in s.failover_on:
                    continue
                return self.error(status, f"upstream {status}")
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **self.meta(m)})
            await resp.prepare(request)
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            seen_usage = False
            buf = b""
            try:
                async for chunk in upstream_resp.content.iter_any():
                    if i > 0 and "failover_garbage" in s.breaks:
                        await resp.write(chunk[: len(chunk) // 2])
                        break
                    if "sse_per_read" in s.breaks:
                        # Broken: assumes every read holds whole events and drops the pieces.
                        chunk = b"".join(f + b"\n\n" for f in chunk.split(b"\n\n")[:-1] if f.startswith(b"data: "))
                    buf += chunk
                    *frames, buf = buf.split(b"\n\n")
                    out = b""
                    for frame in frames:
                        data = frame[6:] if frame.startswith(b"data: ") else b""
                        if data != b"[DONE]" and "pass_malformed" not in s.breaks:
                            try:
                                json.loads(data)
                            except ValueError:   # a malformed event: say so and end the stream unfinished
                                await resp.write(out + b'data: {"error": {"message": "malformed upstream event"}}\n\n')
                                raise aiohttp.ClientPayloadError("malformed upstream event") from None
                        seen_usage = seen_usage or b'"usage":{' in frame.replace(b" ", b"")
                        if data == b"[DONE]" and wants_usage and not seen_usage and "no_usage_estimate" not in s.breaks:
                            estimate = {"id": "chatcmpl-estimate", "object": "chat.completion.chunk", "created": 0,
                                        "model": model, "choices": [],
                                        "usage": {"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17}}
                            out += f"data: {json.dumps(estimate)}\n\n".encode()
                        out += frame + b"\n\n"
                    if out:
                        try:
                            await resp.write(out)
                        except (ConnectionError, RuntimeError):
                            if "keep_upstream_after_disconnect" in s.breaks:
                                async for _ in upstream_resp.content.iter_any():
                                    pass   # broken: drains the provider's whole answer for nobody
                            raise
                else:
                    await resp.write_eof()
                    return resp
            except (asyncio.TimeoutError, aiohttp.ClientError):
                if "stream_fake_complete" in s.breaks:
                    done = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 0, "model": model,
                            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    await resp.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
                    await resp.write_eof()
                    return resp
            finally:
                upstream_resp.release()
            if request.transport is not None:
                request.transport.close()   # cut: the client must see an unfinished stream
            return resp
        return self.error(503, "all providers failed")

    async def stream_from(self, request: web.Request, answer: dict[str, Any], mismatch: bool) -> web.StreamResponse:
        text = answer["choices"][0]["message"].get("content") or ""
        if mismatch:
            text = text.upper()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        base = {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"], "model": answer["model"]}
        for delta, fr in (({"role": "assistant", "content": ""}, None), ({"content": text}, None), ({}, "stop")):
            await resp.write(f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': delta, 'finish_reason': fr}]})}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


class Running:
    """The gateway on a loopback port, served from a thread of its own (the checks are synchronous)."""

    def __init__(self, spec: Spec) -> None:
        self.gateway = Gateway(spec)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        self.url = f"http://127.0.0.1:{self.port}"

    async def _start(self) -> int:
        self.gateway.session = aiohttp.ClientSession()
        self.runner = web.AppRunner(self.gateway.app(), access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        await self.runner.cleanup()
        assert self.gateway.session is not None
        await self.gateway.session.close()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
