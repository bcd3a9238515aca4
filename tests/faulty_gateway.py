"""A small, deliberately faulty LLM gateway: test equipment for the harness's resilience checks.

It keeps every promise a harness.yaml can state (failover policy, retries with backoff and
Retry-After, timeouts, a half-open breaker, rate limits, a cache, idempotency keys, auth, usage
estimates) and has one switch per promise that breaks it, so each check can be shown to PASS when
the promise is kept and to FAIL when it is broken. It is never a product target.
"""
from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import random
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

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
    # streams: completeness, timing, odd provider streams
    "stream_truncate_clean", "done_passthrough", "skip_malformed", "buffer_stream", "stream_total_timeout",
    "usage_inflated", "tool_args_truncated", "passthrough_truncate_clean", "finish_always_stop",
    # provider client errors and their fallbacks
    "error_code_dropped", "no_special_fallbacks", "special_fallback_generic",
    # aliases and routing
    "unknown_model_default", "unknown_model_500", "alias_beats_prefix", "alias_upstream_wrong", "model_name_wrong",
    "routing_first_only",
    # health, observability, security
    "health_text", "health_always_ok", "liveness_needs_key", "no_request_id", "request_id_not_echoed",
    "request_id_not_forwarded", "leak_provider_key_in_headers", "leak_provider_key_in_errors", "leak_master_key",
    "metrics_misses_errors", "metrics_counts_twice", "metrics_latency_wrong", "log_no_request_id", "log_other_request_id",
    # not breaks: a latency observed a while after the answer (as a gateway that logs in the background);
    # request ids too short to find in a log (a counter); the same short id for every request (broken)
    "metrics_latency_late", "request_id_short", "request_id_constant",
    "traceback_in_errors", "origin_bypasses_auth", "no_body_limit", "nested_json_500", "ws_no_auth",
    # a flapping primary, a fallback that refuses a prefill, liveness after a fault
    "sticky_fallback", "prefill_passed_off", "liveness_dies_after_fault",
    # the published schemas (CM-27): fields the protocols require, left out; errors not in the protocol's shape
    "chat_nulls_omitted", "responses_fields_dropped", "anthropic_fields_dropped", "error_fields_dropped",
    "anthropic_error_openai_shaped",
    # client keys through the admin API (/key/generate, /key/delete, /key/info, in LiteLLM's shape)
    "created_key_unusable", "revoke_ignored", "revoke_lags", "expiry_ignored", "budget_not_enforced",
    "spend_misreported", "refused_after_forward",
    "create_lags", "created_key_not_forwarded", "budget_refuses_early", "budget_wrong_status",
    # not a break: its log holds every request's URL with its query and the key it came with (CLIProxyAPI's
    # revoke puts the key in the query), so the run's redaction of the keys it made is tested
    "log_secrets",
    # a concurrency limit (a model's requests in flight) and a silent route retried behind the caller's back
    "concurrency_queues", "concurrency_refuses_late", "concurrency_forwards_refused", "concurrency_never_frees",
    "silent_retried_after_answer",
    # a slot given back a while (Spec.frees_late_s) after the answer went out, as a post-response hook
    # does: not a break while that is within the refusal's bound
    "concurrency_frees_late",
}
RID_KEY = web.RequestKey("rid", str)
RID: contextvars.ContextVar[str] = contextvars.ContextVar("rid", default="")   # the request id, for upstream calls
# The models whose provider timed out during this request (silent_retried_after_answer retries them later)
TIMED_OUT: contextvars.ContextVar[Optional[list[str]]] = contextvars.ContextVar("timed_out", default=None)
SPECIAL_CODES = ("context_length_exceeded", "content_policy_violation")   # 400s with fallbacks of their own
TRACEBACK = 'Traceback (most recent call last):\n  File "/srv/gateway/app.py", line 42, in chat\nKeyError: model'



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
    upstream_key: str = "sk-upstream-faulty-0123456789abcdef"   # what providers get: must never reach a client
    # code -> model -> its chain: a 400 with that code goes down this chain (context-window, content-policy)
    special_fallbacks: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # model -> (strategy, [(provider base URL, upstream model, weight or cost)]): a group of deployments
    groups: dict[str, tuple[str, list[tuple[str, str, float]]]] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)   # "mockprefix/" -> a provider base URL
    log_path: Optional[str] = None   # the gateway's own log: a line per request, with its id
    max_body_bytes: int = 1024 * 1024
    # Keys made through the admin API are charged for plain chat answers: model -> (input, output) per token
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    revoke_lag_s: float = 2.0     # revoke_lags: how long a revoked key still works
    create_lag_s: float = 2.0     # create_lags: how long a created key is refused before it works
    vkey_prefix: str = "sk-vk-"   # the keys /key/generate makes: prefix + 32 hex (a test makes them unlike sk-)
    # A cap on each of these models' chat requests in flight: the one over it is refused at once (503)
    concurrency_limited: set[str] = field(default_factory=set)
    max_in_flight: int = 2
    refuse_late_s: float = 3.0    # concurrency_refuses_late: how long the refusal is held back
    frees_late_s: float = 0.5     # concurrency_frees_late: how long after the answer a slot is given back
    latency_late_s: float = 0.8   # metrics_latency_late: how long after the request counter the latency is observed

    def __post_init__(self) -> None:
        unknown = self.breaks - BREAKS
        if unknown:
            raise ValueError(f"unknown break switch(es): {sorted(unknown)}")


class Fault(Exception):
    def __init__(self, status: int, body: bytes = b"", retry_after: Optional[float] = None) -> None:
        self.status, self.body, self.retry_after = status, body, retry_after


@dataclass
class VirtualKey:
    """A client key made through the admin API: its expiry and budget, what it spent, when revoked."""
    expires_at: Optional[float] = None   # time.monotonic()
    max_budget: Optional[float] = None
    spend: float = 0.0
    revoked_at: Optional[float] = None
    created_at: float = field(default_factory=time.monotonic)


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
        self.prefixed: dict[str, tuple[str, str]] = {}     # "prefix/name" -> (provider base URL, name)
        self.in_flight: dict[str, int] = defaultdict(int)  # provider base URL -> requests under way (least-busy)
        self.latency: dict[str, float] = {}                # provider base URL -> its last answer's time (latency-based)
        self.stuck: dict[str, int] = {}                    # sticky_fallback: model -> how far down its chain it moved
        # /metrics: a registry of its own (several gateways run in one test process)
        self.registry = CollectorRegistry()
        self.requests_metric = Counter("gateway_requests", "chat requests", ["model", "status"], registry=self.registry)
        self.errors_metric = Counter("gateway_errors", "chat requests answered with an error", ["model"], registry=self.registry)
        self.latency_metric = Histogram("gateway_request_duration_seconds", "chat requests, arrival to last byte",
                                        ["model"], registry=self.registry)
        self.faulted = False                               # an upstream failure or a client gone away was seen
        self.busy: dict[str, int] = defaultdict(int)       # model -> chat requests in flight (concurrency limit)
        self.behind_back: set[asyncio.Future] = set()      # silent_retried_after_answer's retries under way
        self.vkeys: dict[str, VirtualKey] = {}             # keys made through the admin API
        self.deleted: list[str] = []                       # every key an admin asked to delete, in order
        self.ids_given = 0                                 # request_id_short: the last id handed out

    # -- plumbing ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        # aiohttp's own 1 MiB limit would refuse big bodies before the gateway's promise is judged:
        # the limit is the gateway's (Spec.max_body_bytes, checked in chat()).
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.middlewares.extend([self.limit_concurrency, self.retry_behind_back])   # CM-29.x, CM-5.2.12
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/messages", self.passthrough)
        app.router.add_post("/v1/responses", self.passthrough)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/v1/realtime", self.realtime)
        app.router.add_get("/health", self.health)
        app.router.add_get("/health/liveliness", self.liveness)
        app.router.add_get("/health/deployments", self.health_deployments)
        app.router.add_post("/key/generate", self.key_generate)
        app.router.add_post("/key/delete", self.key_delete)
        app.router.add_get("/key/info", self.key_info)
        app.on_response_prepare.append(self.stamp)
        app.middlewares.append(self.observe)   # innermost: counts and logs what the handlers answered
        app.router.add_get("/metrics", self.metrics)
        return app

    @web.middleware
    async def observe(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every chat request counted and timed per model (arrival to the last byte: a stream's handler
        returns once it has sent it), and every request's line in the gateway's log with its id."""
        t0 = time.monotonic()
        model = None
        if request.method == "POST" and request.path == "/v1/chat/completions":
            try:
                body = json.loads(await request.read())   # aiohttp keeps it for the handler
                model = body.get("model") if isinstance(body, dict) else None
            except (ValueError, RecursionError):
                pass
        t_read, status = time.monotonic(), 500
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if isinstance(model, str):
                # broken: the time before the provider was asked, not the request's
                self.count(model, status, (t_read if "metrics_latency_wrong" in self.spec.breaks else time.monotonic()) - t0)
            self.log(request, status)

    def count(self, model: str, status: int, seconds: float) -> None:
        s, failed = self.spec, not 200 <= status < 300
        if failed and "metrics_misses_errors" in s.breaks:
            return   # broken: a failed request is counted nowhere
        times = 2 if "metrics_counts_twice" in s.breaks else 1
        self.requests_metric.labels(model=model, status=str(status)).inc(times)
        if failed:
            self.errors_metric.labels(model=model).inc(times)
        if "metrics_latency_late" in s.breaks:
            # the same figure, observed after the request counter moved and after the answer went out
            task = asyncio.ensure_future(self.observe_late(model, seconds))
            self.behind_back.add(task)   # held: the loop keeps only a weak reference to a task
            task.add_done_callback(self.behind_back.discard)
            return
        self.latency_metric.labels(model=model).observe(seconds)

    async def observe_late(self, model: str, seconds: float) -> None:
        await asyncio.sleep(self.spec.latency_late_s)
        self.latency_metric.labels(model=model).observe(seconds)

    def log(self, request: web.Request, status: int) -> None:
        if not self.spec.log_path:
            return
        rid = "-" if "log_no_request_id" in self.spec.breaks else (
            uuid.uuid4().hex if "log_other_request_id" in self.spec.breaks else self.request_id(request))
        where = request.path
        if "log_secrets" in self.spec.breaks:
            where = f"{request.path_qs} key={self.bearer(request)}"
        with open(self.spec.log_path, "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {status} {request.method} {where} request_id={rid}\n")

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @staticmethod
    async def chat_body(request: web.Request) -> Optional[dict[str, Any]]:
        """A chat request's JSON body (aiohttp keeps it for the handler), or None."""
        if request.method != "POST" or request.path != "/v1/chat/completions":
            return None
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError):
            return None
        return body if isinstance(body, dict) else None

    @web.middleware
    async def limit_concurrency(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Spec.max_in_flight chat requests per limited model; the one over it is refused at once with a
        503, never queued and never forwarded (or as the concurrency_* switches break that)."""
        s = self.spec
        body = await self.chat_body(request) if s.concurrency_limited else None
        model = body.get("model") if body else None
        if model not in s.concurrency_limited:
            return await handler(request)
        if self.busy[model] >= s.max_in_flight:
            if "concurrency_queues" in s.breaks:
                deadline = time.monotonic() + 60
                while self.busy[model] >= s.max_in_flight and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)   # broken: waits for a slot instead of refusing
            else:
                if "concurrency_refuses_late" in s.breaks:
                    await asyncio.sleep(s.refuse_late_s)   # broken: the refusal is held back
                if "concurrency_forwards_refused" in s.breaks:
                    await self.try_call(model, body)       # broken: the provider gets it all the same
                return self.error(503, f"{model} already has {s.max_in_flight} requests in flight")
        self.busy[model] += 1
        try:
            return await handler(request)
        finally:
            if "concurrency_frees_late" in s.breaks:   # given back after the answer went out, not with it
                asyncio.get_running_loop().call_later(s.frees_late_s, self.free_slot, model)
            elif "concurrency_never_frees" not in s.breaks:   # broken: the slot is never given back
                self.busy[model] -= 1

    def free_slot(self, model: str) -> None:
        self.busy[model] -= 1

    @web.middleware
    async def retry_behind_back(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """silent_retried_after_answer: a model whose provider timed out during the request is tried once
        more shortly after the caller got its answer (whatever that answer was)."""
        if "silent_retried_after_answer" not in self.spec.breaks:
            return await handler(request)
        body = await self.chat_body(request)
        timed_out: list[str] = []
        TIMED_OUT.set(timed_out)
        resp = await handler(request)

        async def later(model: str) -> None:
            await asyncio.sleep(0.3)   # after aiohttp has written the answer
            await self.try_call(model, body or {})
        for model in dict.fromkeys(timed_out):
            task = asyncio.ensure_future(later(model))
            self.behind_back.add(task)   # held: the loop keeps only a weak reference to a task
            task.add_done_callback(self.behind_back.discard)
        return resp

    def request_id(self, request: web.Request) -> str:
        """The request's id: the client's x-request-id when it sent one, else a fresh one."""
        if RID_KEY not in request:
            given = request.headers.get("x-request-id")
            request[RID_KEY] = given if given and "request_id_not_echoed" not in self.spec.breaks else self.new_id()
        return request[RID_KEY]

    def new_id(self) -> str:
        if "request_id_constant" in self.spec.breaks:
            return "7"   # broken: every request's id, and a digit any log line may hold (its time, its status)
        if "request_id_short" in self.spec.breaks:
            self.ids_given += 1
            return str(self.ids_given)   # distinct, but too short to tell its line from others
        return uuid.uuid4().hex

    async def stamp(self, request: web.Request, response: web.StreamResponse) -> None:
        """Every response (plain, streamed, error, websocket upgrade) carries the request id."""
        if "no_request_id" not in self.spec.breaks:
            response.headers["x-request-id"] = self.request_id(request)
        if "leak_provider_key_in_headers" in self.spec.breaks:
            response.headers["x-upstream-authorization"] = f"Bearer {self.spec.upstream_key}"

    def refused(self, request: web.Request) -> Optional[web.Response]:
        """The auth refusal for this request, or None when its key is good."""
        s = self.spec
        if "origin_bypasses_auth" in s.breaks and request.headers.get("Origin"):
            return None    # broken: a browser's request is trusted without a key
        auth = request.headers.get("Authorization", "")
        key = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not key and "auth_missing_passes" not in s.breaks:
            return self.error(401, "missing key")
        if key in self.vkeys:
            return self.virtual_refusal(key)
        if key and key not in s.keys and "auth_any_key" not in s.breaks:
            if not ((key in s.revoked and "revoked_accepted" in s.breaks)
                    or (key in s.expired and "expired_accepted" in s.breaks)):
                return self.error(401, "invalid key")
        return None

    # -- client keys through the admin API (LiteLLM's /key/generate, /key/delete, /key/info) --
    @staticmethod
    def bearer(request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        return auth[7:].strip() if auth.startswith("Bearer ") else ""

    def virtual_refusal(self, key: str) -> Optional[web.Response]:
        """A made key is refused once revoked, expired or over its budget (as the switches allow)."""
        vk, s, now = self.vkeys[key], self.spec, time.monotonic()
        if vk.revoked_at is not None and "revoke_ignored" not in s.breaks:
            if now - vk.revoked_at >= (s.revoke_lag_s if "revoke_lags" in s.breaks else 0.0):
                return self.error(401, "key revoked")
        if vk.expires_at is not None and now >= vk.expires_at and "expiry_ignored" not in s.breaks:
            return self.error(401, "key expired")
        if "create_lags" in s.breaks and now - vk.created_at < s.create_lag_s:
            return self.error(401, "invalid key")   # broken: the key works only a while after it was answered
        # broken (budget_refuses_early): refused when half the budget is spent
        limit = None if vk.max_budget is None else vk.max_budget / (2 if "budget_refuses_early" in s.breaks else 1)
        if limit is not None and vk.spend >= limit and "budget_not_enforced" not in s.breaks:
            if "budget_wrong_status" in s.breaks:   # broken: a refusal no client can tell from a missing route
                return self.error(404, "not found")
            # LiteLLM's budget_exceeded: litellm.budget_exceeded_status_code, 422 (litellm/__init__.py:413,
            # exceptions.py:1092, proxy/auth/auth_exception_handler.py:51-57 @1.108.7)
            return self.error(422, "budget exceeded")
        return None

    async def forward_anyway(self, request: web.Request) -> None:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return
        if isinstance(body, dict) and body.get("model") in self.spec.deployments:
            await self.try_call(body["model"], body)

    def charge(self, key: str, model: str, answer: dict[str, Any]) -> None:
        """A made key's spend grows by the answer's usage times the model's price."""
        usage, price = answer.get("usage"), self.spec.prices.get(model)
        if key in self.vkeys and isinstance(usage, dict) and price:
            self.vkeys[key].spend += usage.get("prompt_tokens", 0) * price[0] + usage.get("completion_tokens", 0) * price[1]

    def not_admin(self, request: web.Request) -> Optional[web.Response]:
        return None if self.bearer(request) in self.spec.keys else self.error(401, "admin key required")

    async def key_generate(self, request: web.Request) -> web.Response:
        """{duration: "2s", max_budget: 0.001} -> {"key": "sk-...", ...}: LiteLLM's fields."""
        if (refused := self.not_admin(request)) is not None:
            return refused
        body = json.loads(await request.read() or b"{}")
        key = self.spec.vkey_prefix + uuid.uuid4().hex
        vk = VirtualKey(max_budget=body.get("max_budget"))
        if body.get("duration"):
            vk.expires_at = time.monotonic() + float(str(body["duration"]).rstrip("s"))
        if "created_key_unusable" not in self.spec.breaks:   # broken: the key is answered, never stored
            self.vkeys[key] = vk
        return web.json_response({"key": key, "max_budget": vk.max_budget, "key_alias": body.get("key_alias"),
                                  "duration": body.get("duration")})

    async def key_delete(self, request: web.Request) -> web.Response:
        """{keys: [...]} -> {"deleted_keys": [...]}."""
        if (refused := self.not_admin(request)) is not None:
            return refused
        keys = json.loads(await request.read()).get("keys") or []
        for key in keys:
            self.deleted.append(key)
            if key in self.vkeys:
                self.vkeys[key].revoked_at = time.monotonic()
        return web.json_response({"deleted_keys": keys})

    async def key_info(self, request: web.Request) -> web.Response:
        """?key=... -> {"key": ..., "info": {"spend": ..., "max_budget": ...}}."""
        if (refused := self.not_admin(request)) is not None:
            return refused
        key = request.query.get("key", "")
        if key not in self.vkeys:
            return self.error(404, "no such key")
        vk = self.vkeys[key]
        spend = vk.spend * (1.5 if "spend_misreported" in self.spec.breaks else 1)
        return web.json_response({"key": key, "info": {"spend": spend, "max_budget": vk.max_budget}})

    async def realtime(self, request: web.Request) -> web.StreamResponse:
        """Forwards a realtime websocket to the model's provider, both ways."""
        if "ws_no_auth" not in self.spec.breaks and (refused := self.refused(request)) is not None:
            return refused
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
            if client.close_code not in (None, 1000):
                self.fault_seen()   # the session was dropped, not closed
            if "ws_keep_upstream" in self.spec.breaks:
                await asyncio.sleep(5)   # broken: the provider's stream runs on for nobody
            pump.cancel()
        return client

    def dead(self) -> Optional[web.Response]:
        """liveness_dies_after_fault: once a fault has been seen the probes get a 503 (the process lives,
        its event loop wedged, say), while requests are still served."""
        if self.faulted and "liveness_dies_after_fault" in self.spec.breaks:
            return web.json_response({"status": "wedged"}, status=503)
        return None

    def fault_seen(self) -> None:
        self.faulted = True

    async def health(self, request: web.Request) -> web.Response:
        if (dead := self.dead()) is not None:
            return dead
        if "health_text" in self.spec.breaks:
            return web.Response(text="OK")
        return web.json_response({"status": "ok"})

    async def liveness(self, request: web.Request) -> web.Response:
        if (dead := self.dead()) is not None:
            return dead
        if "liveness_needs_key" in self.spec.breaks and (refused := self.refused(request)) is not None:
            return refused
        return web.json_response("I'm alive!")

    async def health_deployments(self, request: web.Request) -> web.Response:
        """Each deployment tried (its provider's /v1/models, 1 s): healthy or not, by api_base."""
        if (refused := self.refused(request)) is not None:
            return refused
        assert self.session is not None
        healthy, unhealthy = [], []
        for model, (base, _) in self.spec.deployments.items():
            try:
                async with self.session.get(f"{base}/v1/models", timeout=aiohttp.ClientTimeout(total=1)) as r:
                    ok = r.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
            item = {"model": model, "api_base": base}
            (healthy if ok or "health_always_ok" in self.spec.breaks else unhealthy).append(item)
        return web.json_response({"healthy_endpoints": healthy, "unhealthy_endpoints": unhealthy,
                                  "healthy_count": len(healthy), "unhealthy_count": len(unhealthy)})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in self.spec.deployments]})

    def error(self, status: int, message: str, headers: Optional[dict[str, str]] = None,
              anthropic: bool = False) -> web.Response:
        """The gateway's own error (not a provider's, relayed), in the shape of the protocol asked."""
        if "leak_master_key" in self.spec.breaks:
            message += f" (accepted keys: {', '.join(sorted(self.spec.keys))})"
        if "traceback_in_errors" in self.spec.breaks:
            message += "\n" + TRACEBACK
        return web.json_response(self.error_body(status, message, "gateway_error", anthropic), status=status,
                                 headers=headers)

    def error_body(self, status: int, message: str, kind: str, anthropic: bool = False) -> dict[str, Any]:
        """OpenAI's ErrorResponse (param and code null when there is none), or Anthropic's on /v1/messages."""
        if anthropic and "anthropic_error_openai_shaped" not in self.spec.breaks:
            kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error"}.get(status, "api_error")
            return {"type": "error", "error": {"type": kind, "message": message}}
        if "error_fields_dropped" in self.spec.breaks:
            return {"error": {"message": message, "type": kind}}   # broken: param and code left out
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def relayed(self, f: "Fault") -> dict[str, Any]:
        """A provider's error passed on: its own error object (code included), else a generic one."""
        try:
            body = json.loads(f.body)
        except ValueError:
            body = None
        if not (isinstance(body, dict) and isinstance(body.get("error"), dict)) or "error_code_dropped" in self.spec.breaks:
            body = self.error_body(f.status, f"upstream {f.status}", "upstream_error")
        if "leak_provider_key_in_errors" in self.spec.breaks:
            body = {"error": {**body["error"], "message": f"{body['error'].get('message')} (sent with {self.spec.upstream_key})"}}
        return body

    @staticmethod
    def special_code(f: "Fault") -> Optional[str]:
        try:
            code = (json.loads(f.body).get("error") or {}).get("code")
        except (ValueError, AttributeError):
            return None
        return code if code in SPECIAL_CODES else None

    def after_failure(self, model: str, f: "Fault", special: bool) -> str:
        """What a failure of the model being tried leads to: "special" (the code's own fallback chain),
        "next" (down the chain) or "stop" (the caller gets the error)."""
        s = self.spec
        code = self.special_code(f)
        if code and not special and model in s.special_fallbacks.get(code, {}):
            if "no_special_fallbacks" in s.breaks:
                return "stop"      # broken: the promised context-window / content-policy fallback is not taken
            if "special_fallback_generic" in s.breaks:
                return "next"      # broken: the generic chain instead of the code's own
            return "special"
        fails_over = f.status in s.failover_on or ("failover_on_client_errors" in s.breaks and 400 <= f.status < 500)
        return "next" if fails_over else "stop"

    def deployment(self, model: str) -> tuple[str, str]:
        """(provider base URL, upstream model) for one attempt: a group picks by its strategy."""
        s = self.spec
        if model in self.prefixed:
            return self.prefixed[model]
        if model in s.groups:
            strategy, deps = s.groups[model]
            if "routing_first_only" in s.breaks:
                d = deps[0]   # broken: whatever the strategy promises, the first deployment
            elif strategy == "weighted":
                d = random.choices(deps, weights=[w for _, _, w in deps])[0]
            elif strategy == "least-busy":
                d = min(deps, key=lambda x: self.in_flight[x[0]])
            elif strategy == "latency-based":
                d = min(deps, key=lambda x: self.latency.get(x[0], 0.0))
            else:   # cost-based
                d = min(deps, key=lambda x: x[2])
            return d[0], d[1]
        base, upstream = s.deployments[model]
        return base, (model if "alias_upstream_wrong" in s.breaks else upstream)

    def upstream_headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.spec.upstream_key}"}
        rid = RID.get()
        if rid and "request_id_not_forwarded" not in self.spec.breaks:
            headers["x-request-id"] = rid
        return headers

    def resolve_prefix(self, model: str) -> Optional[str]:
        """A `prefix/name` model: the prefix's provider serves `name`, whatever alias shares that name."""
        for prefix, base in self.spec.prefixes.items():
            if model.startswith(prefix):
                rest = model[len(prefix):]
                if "alias_beats_prefix" in self.spec.breaks and rest in self.spec.deployments:
                    return rest   # broken: the alias of the same name wins over the explicit provider
                self.prefixed[model] = (base, rest)
                return model
        return None

    # -- request path --------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.StreamResponse:
        s = self.spec
        RID.set(self.request_id(request))
        if (refused := self.refused(request)) is not None:
            if "refused_after_forward" in s.breaks and self.bearer(request) in self.vkeys:
                await self.forward_anyway(request)   # broken: the provider gets the refused request first
            return refused
        if "created_key_not_forwarded" in s.breaks and self.bearer(request) in self.vkeys:
            # broken: a made key's request is answered, but no provider is asked
            return web.json_response({"id": "chatcmpl-canned", "object": "chat.completion", "created": int(time.time()),
                                      "model": "canned", "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": "canned"}}],
                                      "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
        key = request.headers.get("Authorization", "")[7:].strip()
        if (request.content_length or 0) > s.max_body_bytes and "no_body_limit" not in s.breaks:
            return self.error(413, f"request body larger than {s.max_body_bytes} bytes")
        try:
            body = json.loads(await request.read())
            model = body["model"]
        except RecursionError:
            if "nested_json_500" in s.breaks:
                raise
            return self.error(400, "request body nested too deeply")
        except (ValueError, KeyError, TypeError):
            return self.error(400, "invalid body")
        if isinstance(model, str) and (prefixed := self.resolve_prefix(model)):
            model = prefixed
        elif model not in s.deployments and model not in s.groups:
            if "unknown_model_500" in s.breaks:
                return self.error(500, f"internal error looking up {model}")
            if "unknown_model_default" not in s.breaks:
                return self.error(404, f"unknown model {model}")
            model = next(iter(s.deployments))   # broken: an unknown model is served by some default

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
        if status == 200:
            self.charge(key, model, answer)
        if status == 200 and "chat_nulls_omitted" in s.breaks:
            for c in answer.get("choices") or []:   # broken: the nulls the schema requires, left out
                for where, key in ((c, "logprobs"), (c.get("message") or {}, "refusal")):
                    if key in where and where[key] is None:
                        del where[key]
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
        return ([model] + rest)[self.stuck.get(model, 0):]   # sticky_fallback: from where it moved to, for good

    def moved_to(self, model: str, i: int, special: bool) -> None:
        """sticky_fallback: once failed over, the model's traffic starts at the member that answered."""
        if i > 0 and not special and "sticky_fallback" in self.spec.breaks:
            self.stuck[model] = self.stuck.get(model, 0) + i

    def prefill_answer(self, model: str, body: dict[str, Any], f: "Fault") -> Optional[dict[str, Any]]:
        """prefill_passed_off: a fallback's 400 on a request ending with an assistant turn is answered 200,
        the prefill as the reply."""
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs and isinstance(msgs[-1], dict) else {}
        if "prefill_passed_off" not in self.spec.breaks or f.status != 400 or last.get("role") != "assistant":
            return None
        text = last.get("content") if isinstance(last.get("content"), str) else ""
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}}

    async def route(self, model: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Tries the chain: retries on the same model, then failover, as promised (or broken). A 400
        whose code has a fallback chain of its own (context window, content policy) goes down that one."""
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
        plan, special, i = self.chain(model), False, 0
        while i < len(plan):
            m = plan[i]
            if not self.breaker.allows(m):
                i += 1
                continue
            retries = self.retries()
            for attempt in range(retries + 1):
                if attempt and not self.breaker.allows(m):
                    break   # the failure before this retry opened the breaker
                try:
                    answer = await self.call(m, body)
                except Fault as f:
                    last = f
                    self.breaker.failure(m)
                    if attempt == retries or not self.retryable(f):
                        break
                    await asyncio.sleep(self.wait_before_retry(f))
                    continue
                self.breaker.success(m)
                self.moved_to(model, i, special)
                moved = i > 0 or special
                if moved and "double_backup" in s.breaks:
                    await self.try_call(m, body)
                return 200, self.finish(answer, model, m, moved, usage_sum), self.meta(model if "metadata_wrong" in s.breaks else m)
            if i > 0 and (passed_off := self.prefill_answer(model, body, last)) is not None:
                return 200, passed_off, self.meta(m)   # broken: the fallback's refusal turned into a reply
            then = self.after_failure(model, last, special)
            if then == "special":
                plan, special, i = s.special_fallbacks[self.special_code(last) or ""][model], True, 0
                continue
            if then == "stop":
                if "error_not_openai_shaped" in s.breaks:   # an error a client written for the API cannot read
                    return last.status, {"detail": f"upstream {last.status}"}, {}
                return last.status, self.relayed(last), {}
            usage_sum += 10
            i += 1
        return last.status if last.status >= 500 else 503, {"error": {"message": "all providers failed", "type": "upstream_error"}}, {}

    def retries(self) -> int:
        s = self.spec
        retries = s.retries + (1 if "extra_retry" in s.breaks else 0)
        retries = retries * 5 if "hammer" in s.breaks else retries
        return 0 if "no_retry" in s.breaks else retries

    def retryable(self, f: "Fault") -> bool:
        return f.status in self.spec.retry_on or ("retry_client_errors" in self.spec.breaks and 400 <= f.status < 500)

    def wait_before_retry(self, f: "Fault") -> float:
        wait = 0.0 if "no_backoff" in self.spec.breaks else self.spec.backoff_s
        if f.retry_after and "ignore_retry_after" not in self.spec.breaks:
            wait = max(wait, f.retry_after)
        return wait

    def finish(self, answer: dict[str, Any], requested: str, answering: str, failed_over: bool, extra: int) -> dict[str, Any]:
        s = self.spec
        answer = dict(answer)
        answer["model"] = requested if "model_names_primary" in s.breaks else answering
        if "model_name_wrong" in s.breaks:
            answer["model"] = "some-other-model"
        if "usage" not in answer and "no_usage_estimate" not in s.breaks:
            text = answer["choices"][0]["message"].get("content") or ""
            answer["usage"] = {"prompt_tokens": 5, "completion_tokens": len(text.split()),
                               "total_tokens": 5 + len(text.split())}
        if (failed_over and "failover_usage_doubled" in s.breaks or "usage_inflated" in s.breaks) and "usage" in answer:
            u = answer["usage"]
            answer["usage"] = {k: v * 2 if isinstance(v, int) else v for k, v in u.items()}
        if "finish_always_stop" in s.breaks and answer.get("choices"):
            answer["choices"][0]["finish_reason"] = "stop"
        if "tool_args_truncated" in s.breaks:
            for call in (answer.get("choices") or [{}])[0].get("message", {}).get("tool_calls") or []:
                call["function"]["arguments"] = call["function"]["arguments"][:-3]
        if failed_over and "failover_leaks_error" in s.breaks:
            answer["error"] = {"message": "primary failed"}
        if failed_over and "failover_garbage" in s.breaks:
            answer = {"partial": True}
        return answer

    def meta(self, model: str) -> dict[str, str]:
        s = self.spec
        base = (self.prefixed.get(model) or s.deployments.get(model) or s.groups[model][1][0][:2])[0]
        return {"x-gw-api-base": base}

    async def try_call(self, model: str, body: dict[str, Any]) -> None:
        try:
            await self.call(model, body)
        except Fault:
            pass

    async def call(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        s = self.spec
        base, upstream = self.deployment(model)
        timeout = s.timeout_s * (0.2 if "timeout_too_short" in s.breaks else 1)
        total = None if "no_timeout" in s.breaks else timeout
        assert self.session is not None
        t0 = time.monotonic()
        self.in_flight[base] += 1
        try:
            async with self.session.post(f"{base}/v1/chat/completions", json={**body, "model": upstream, "stream": False},
                                         headers=self.upstream_headers(),
                                         timeout=aiohttp.ClientTimeout(total=total)) as r:
                raw = await r.read()
                if r.status != 200:
                    ra = r.headers.get("Retry-After")
                    self.fault_seen()
                    raise Fault(r.status, raw, float(ra) if ra else None)
                return json.loads(raw)
        except asyncio.TimeoutError:
            self.fault_seen()
            if (timed_out := TIMED_OUT.get()) is not None:
                timed_out.append(model)
            raise Fault(504, b"upstream timeout") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ValueError):
            self.fault_seen()
            raise Fault(502, b"upstream connection failed") from None
        finally:
            self.in_flight[base] -= 1
            self.latency[base] = time.monotonic() - t0

    async def open_stream(self, model: str, body: dict[str, Any]) -> "aiohttp.ClientResponse | Fault":
        """One streamed attempt at `model`: the provider's 200 response, or the Fault it ended in."""
        s = self.spec
        base, upstream = self.deployment(model)
        assert self.session is not None
        sock_read = None if "no_timeout" in s.breaks else s.stream_timeout_s * (0.2 if "timeout_too_short" in s.breaks else 1)
        try:
            up = await self.session.post(f"{base}/v1/chat/completions", json={**body, "model": upstream},
                                         headers=self.upstream_headers(),
                                         timeout=aiohttp.ClientTimeout(total=None, sock_read=sock_read))
        except (aiohttp.ClientError, asyncio.TimeoutError):
            self.fault_seen()
            return Fault(502, b"upstream connection failed")
        if up.status != 200:
            try:
                raw = await up.read()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                raw = b""
            up.release()
            self.fault_seen()
            return Fault(up.status, raw)
        return up

    async def route_stream(self, request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
        """Streams from the first deployment that answers 200, with retries and failover (and the
        code-specific chains) before the first byte, as route() does for plain requests."""
        s = self.spec
        last: Fault = Fault(503, b"no deployment available")
        if "hedge" in s.breaks and len(self.chain(model)) > 1:
            extra = await self.open_stream(self.chain(model)[1], body)   # broken: the fallback asked anyway
            if not isinstance(extra, Fault):
                extra.release()
        plan, special, i = self.chain(model), False, 0
        while i < len(plan):
            m = plan[i]
            retries = self.retries()
            for attempt in range(retries + 1):
                opened = await self.open_stream(m, body)
                if isinstance(opened, Fault):
                    last = opened
                    if attempt == retries or not self.retryable(opened):
                        break
                    await asyncio.sleep(self.wait_before_retry(opened))
                    continue
                self.moved_to(model, i, special)
                moved = i > 0 or special
                if moved and "double_backup" in s.breaks:
                    extra = await self.open_stream(m, body)
                    if not isinstance(extra, Fault):
                        extra.release()
                return await self.relay_stream(request, model, m, moved, body, opened)
            then = self.after_failure(model, last, special)
            if then == "special":
                plan, special, i = s.special_fallbacks[self.special_code(last) or ""][model], True, 0
                continue
            if then == "stop":
                if "error_not_openai_shaped" in s.breaks:
                    return web.json_response({"detail": f"upstream {last.status}"}, status=last.status)
                return web.json_response(self.relayed(last), status=last.status)
            i += 1
        return self.error(503, "all providers failed")

    async def relay_stream(self, request: web.Request, model: str, m: str, moved: bool, body: dict[str, Any],
                           upstream_resp: aiohttp.ClientResponse) -> web.StreamResponse:
        """Passes the provider's events on, checked one by one: a malformed event ends the stream
        unfinished (or is dropped: skip_malformed), a clean end without finish_reason is a truncation
        (cut), a finished stream without [DONE] gets one."""
        s = self.spec
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           **self.meta(model if "metadata_wrong" in s.breaks else m)})
        await resp.prepare(request)
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        seen_usage = seen_done = seen_finish = False
        content_frames = 0
        held: list[bytes] = []          # buffer_stream: everything held back until the end
        t_start = time.monotonic()

        async def emit(data: bytes) -> None:
            if "buffer_stream" in s.breaks:
                held.append(data)
                return
            try:
                await resp.write(data)
            except (ConnectionError, RuntimeError):
                self.fault_seen()   # the client went away mid-stream
                if "keep_upstream_after_disconnect" in s.breaks:
                    async for _ in upstream_resp.content.iter_any():
                        pass   # broken: drains the provider's whole answer for nobody
                raise

        async def fake_end() -> web.StreamResponse:
            done = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 0, "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            await resp.write(b"".join(held) + f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
            await resp.write_eof()
            return resp

        buf = b""
        try:
            async for chunk in upstream_resp.content.iter_any():
                if "stream_total_timeout" in s.breaks and time.monotonic() - t_start > s.stream_timeout_s:
                    raise asyncio.TimeoutError   # broken: the stream timeout bounds the whole stream
                if moved and "failover_garbage" in s.breaks:
                    await resp.write(chunk[: len(chunk) // 2])
                    raise aiohttp.ClientPayloadError("garbage on purpose")
                if "sse_per_read" in s.breaks:
                    # Broken: assumes every read holds whole events and drops the pieces.
                    chunk = b"".join(f + b"\n\n" for f in chunk.split(b"\n\n")[:-1] if f.startswith(b"data: "))
                buf += chunk
                *frames, buf = buf.split(b"\n\n")
                out = b""
                for frame in frames:
                    data = frame[6:] if frame.startswith(b"data: ") else b""
                    if data == b"[DONE]":
                        seen_done = True
                        if wants_usage and not seen_usage and "no_usage_estimate" not in s.breaks:
                            out += self.usage_estimate(model)
                        out += frame + b"\n\n"
                        continue
                    try:
                        obj = json.loads(data)
                    except ValueError:
                        if "pass_malformed" in s.breaks:
                            out += frame + b"\n\n"
                            continue
                        if "skip_malformed" in s.breaks:
                            continue   # a rescue: the bad event is dropped, the rest still flows
                        # a malformed event: say so and end the stream unfinished
                        await resp.write(b"".join(held) + out + b'data: {"error": {"message": "malformed upstream event"}}\n\n')
                        raise aiohttp.ClientPayloadError("malformed upstream event") from None
                    seen_usage = seen_usage or isinstance(obj.get("usage"), dict)
                    choices = obj.get("choices") or []
                    seen_finish = seen_finish or any(c.get("finish_reason") for c in choices)
                    if any((c.get("delta") or {}).get("content") or (c.get("delta") or {}).get("tool_calls") for c in choices):
                        content_frames += 1
                        if "stream_truncate_clean" in s.breaks and content_frames > 3:
                            await emit(out)
                            return await fake_end()   # broken: cut short, then ended as if complete
                    frame = self.rewrite(frame, obj, model, moved)
                    out += frame + b"\n\n"
                if out:
                    await emit(out)
            if not seen_done:
                if not seen_finish:   # a clean end of the body mid-answer: a truncation, not an end
                    if "stream_fake_complete" in s.breaks:
                        return await fake_end()
                    raise aiohttp.ClientPayloadError("the provider's stream ended before its answer did")
                if "done_passthrough" not in s.breaks:
                    await emit((self.usage_estimate(model) if wants_usage and not seen_usage else b"") + b"data: [DONE]\n\n")
            if held:
                await resp.write(b"".join(held))
            await resp.write_eof()
            return resp
        except (asyncio.TimeoutError, aiohttp.ClientError):
            self.fault_seen()
            if "stream_fake_complete" in s.breaks:
                return await fake_end()
        finally:
            upstream_resp.release()
        if request.transport is not None:
            request.transport.close()   # cut: the client must see an unfinished stream
        return resp

    def usage_estimate(self, model: str) -> bytes:
        estimate = {"id": "chatcmpl-estimate", "object": "chat.completion.chunk", "created": 0,
                    "model": model, "choices": [],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17}}
        return f"data: {json.dumps(estimate)}\n\n".encode()

    def rewrite(self, frame: bytes, obj: dict[str, Any], model: str, moved: bool) -> bytes:
        """What the broken switches do to one event on its way (the reference passes it as it came)."""
        s = self.spec
        changed = False
        if moved and "model_names_primary" in s.breaks:
            obj["model"], changed = model, True
        if "model_name_wrong" in s.breaks:
            obj["model"], changed = "some-other-model", True
        if isinstance(obj.get("usage"), dict) and ("usage_inflated" in s.breaks or moved and "failover_usage_doubled" in s.breaks):
            obj["usage"] = {k: v * 2 if isinstance(v, int) else v for k, v in obj["usage"].items()}
            changed = True
        if "finish_always_stop" in s.breaks:
            for c in obj.get("choices") or []:
                if c.get("finish_reason") not in (None, "stop"):
                    c["finish_reason"], changed = "stop", True   # broken: a cut answer called finished
        if "chat_nulls_omitted" in s.breaks:
            for c in obj.get("choices") or []:
                if "finish_reason" in c and c["finish_reason"] is None:
                    del c["finish_reason"]
                    changed = True   # broken: a chunk choice's null finish_reason left out
        if "tool_args_truncated" in s.breaks:
            for c in obj.get("choices") or []:
                for tc in (c.get("delta") or {}).get("tool_calls") or []:
                    args = (tc.get("function") or {}).get("arguments") or ""
                    if args.endswith("}"):
                        tc["function"]["arguments"], changed = args[:-1], True   # the closing brace lost
        return b"data: " + json.dumps(obj).encode() if changed else frame

    async def passthrough(self, request: web.Request) -> web.StreamResponse:
        """/v1/messages and /v1/responses: the body goes to the model's provider on the same path,
        with the model mapped; the answer comes back as it was (plain or streamed)."""
        s = self.spec
        RID.set(self.request_id(request))
        if (refused := self.refused(request)) is not None:
            return refused
        try:
            body = json.loads(await request.read())
            model = body["model"]
        except (ValueError, KeyError, TypeError, RecursionError):
            return self.error(400, "invalid body", anthropic=request.path == "/v1/messages")
        if model not in s.deployments:
            return self.error(404, f"unknown model {model}", anthropic=request.path == "/v1/messages")
        base, upstream = self.deployment(model)
        headers = {**self.upstream_headers(), "x-api-key": s.upstream_key,
                   "anthropic-version": request.headers.get("anthropic-version", "2023-06-01")}
        assert self.session is not None
        async with self.session.post(base + request.path, json={**body, "model": upstream}, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=None, sock_read=s.stream_timeout_s * 5)) as up:
            ctype = up.headers.get("Content-Type", "application/json")
            if not body.get("stream") or up.status != 200:
                raw = await up.read()
                if "usage_inflated" in s.breaks and up.status == 200:
                    answer = json.loads(raw)
                    answer["usage"] = {k: v * 2 if isinstance(v, int) else v for k, v in (answer.get("usage") or {}).items()}
                    raw = json.dumps(answer).encode()
                raw = self.reshape_answer(request.path, up.status, raw)
                return web.Response(body=raw, status=up.status, headers={"Content-Type": ctype})
            resp = web.StreamResponse(status=200, headers={"Content-Type": ctype})
            await resp.prepare(request)
            buf, events = b"", 0
            reshaped = {"/v1/responses": "responses_fields_dropped", "/v1/messages": "anthropic_fields_dropped"}
            framed = "passthrough_truncate_clean" in s.breaks or reshaped.get(request.path) in s.breaks
            async for chunk in up.content.iter_any():
                if not framed:
                    await resp.write(chunk)
                    continue
                buf += chunk
                *frames, buf = buf.split(b"\n\n")
                for frame in frames:
                    if events >= 5 and "passthrough_truncate_clean" in s.breaks:
                        await resp.write_eof()   # broken: cut after five events, and the body ended as if whole
                        return resp
                    await resp.write(self.reshape_event(request.path, frame) + b"\n\n")
                    events += 1
            await resp.write_eof()
            return resp

    def reshape_answer(self, path: str, status: int, raw: bytes) -> bytes:
        """What the schema switches do to a plain /v1/responses or /v1/messages answer (the reference: nothing)."""
        s = self.spec
        try:
            answer = json.loads(raw)
        except ValueError:
            return raw
        if not isinstance(answer, dict):
            return raw
        if status == 200 and path == "/v1/responses" and "responses_fields_dropped" in s.breaks:
            answer.pop("tools", None)            # broken: a field the Response object requires
        elif status == 200 and path == "/v1/messages" and "anthropic_fields_dropped" in s.breaks:
            answer.pop("stop_sequence", None)    # broken: required, null when no stop sequence was hit
        elif status >= 400 and path == "/v1/messages" and "anthropic_error_openai_shaped" in s.breaks:
            err = answer.get("error") if isinstance(answer.get("error"), dict) else {}
            answer = {"error": {"message": err.get("message", ""), "type": err.get("type", "upstream_error"),
                                "param": None, "code": None}}   # broken: OpenAI's error shape on Anthropic's route
        else:
            return raw
        return json.dumps(answer).encode()

    def reshape_event(self, path: str, frame: bytes) -> bytes:
        """What the schema switches do to one streamed event (its `data:` line) of /v1/responses or /v1/messages."""
        s = self.spec
        lines = frame.split(b"\n")
        for i, line in enumerate(lines):
            if not line.startswith(b"data: "):
                continue
            try:
                obj = json.loads(line[6:])
            except ValueError:
                return frame
            if not isinstance(obj, dict):
                return frame
            if path == "/v1/responses" and "responses_fields_dropped" in s.breaks:
                obj.pop("sequence_number", None)   # broken: every Responses stream event requires one
            elif (path == "/v1/messages" and "anthropic_fields_dropped" in s.breaks
                  and obj.get("type") == "content_block_delta"):
                obj.pop("index", None)             # broken: which content block the delta belongs to
            else:
                return frame
            lines[i] = b"data: " + json.dumps(obj).encode()
        return b"\n".join(lines)

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

    def judge(self, cfg: Any, claim: Any, providers: dict[str, Any], key: str, *, params: Optional[dict] = None,
              gateway_logs: Optional[list[str]] = None, timeout_s: float = 30, chaos: Any = None,
              chaos_proxies: Optional[dict[str, str]] = None) -> Any:
        """One claim's check against this gateway, as the claims lane runs it: a client with the key,
        the claim's params (overridden by `params`), the providers' controls, and for a chaos claim
        the fault proxy's control and which provider's link runs through which proxy. The both-ways
        tests' one way in."""
        from harness.checks import base
        from harness.client.http import GatewayClient
        client = GatewayClient(self.url, "Authorization", f"Bearer {key}", read_s=min(20, timeout_s),
                               request_s=timeout_s, stream_s=timeout_s)
        ctx = base.CheckContext(cfg, client, providers, key, claim.id)
        ctx.gateway_logs = gateway_logs or []
        ctx.chaos, ctx.chaos_proxies = chaos, chaos_proxies or {}
        return base.run(ctx, claim.check, {**claim.params, **(params or {})})
