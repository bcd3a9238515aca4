"""Verdicts, the context a check runs in, and the registry that maps catalog names to checks.

A check is a function `(ctx, **params) -> Verdict`. It sends requests through the gateway, may
script the mock providers and read their journal, and hands what it saw to the oracles. It
returns the PASS verdict; anything else it *raises*: `Deviation` (FAIL, or SAFE with
status=SAFE), `Unsupported` (nothing promised or configured), `NotJudged` (ERROR: no verdict could
be reached). New check: write the function in a module of this package, decorate it with
`@check("name")`, and name it in a claim under matrices/claims/.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Generic, Optional, TypeVar

from harness.client.control import ProviderControl
from harness.client.http import Exchange, GatewayClient
from harness.config import HarnessConfig

from harness.results.record import Status

PASS, FAIL, SAFE, PARTIAL = Status.PASS, Status.FAIL, Status.SAFE, Status.PARTIAL
UNSUPPORTED, MISSING, ERROR = Status.UNSUPPORTED, Status.MISSING, Status.ERROR
STATUSES = (PASS, FAIL, SAFE, PARTIAL, UNSUPPORTED, MISSING, ERROR)


@dataclass
class Verdict:
    status: Status
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": Status(self.status).value}


class Outcome(Exception):
    """A check ends with a verdict other than PASS by raising one of these."""
    status: Status = Status.ERROR

    def __init__(self, reason: str, evidence: Optional[dict[str, Any]] = None, status: Optional[Status] = None) -> None:
        super().__init__(reason)
        self.reason, self.evidence = reason, dict(evidence or {})
        if status is not None:
            self.status = Status(status)

    def verdict(self) -> "Verdict":
        return Verdict(self.status, self.reason, self.evidence)


class Deviation(Outcome):
    """The gateway broke the promise: FAIL (or SAFE: broken, but cleanly within a bound)."""
    status = Status.FAIL


class Unsupported(Outcome):
    """The gateway (or its config) does not offer what the claim is about: not a pass, not a fail."""
    status = Status.UNSUPPORTED


class NotJudged(Outcome):
    """No verdict could be reached (the world was not in the state the check needs): ERROR."""
    status = Status.ERROR


def judge(violations: list[str], evidence: dict[str, Any], ok: str) -> Verdict:
    """The PASS verdict `ok` when there are no violations; else raises Deviation naming the first three."""
    if violations:
        raise Deviation("; ".join(violations[:3]) + (f" (+{len(violations) - 3} more)" if len(violations) > 3 else ""),
                        {**evidence, "violations": violations})
    return Verdict(PASS, ok, evidence)


T = TypeVar("T")


@dataclass
class Polled(Generic[T]):
    """What poll_until saw: each result in order (at least one), whether `done` held for the last,
    and the seconds from the start of the wait to the last result."""
    results: list[T]
    met: bool
    waited_s: float

    @property
    def last(self) -> T:
        return self.results[-1]


def poll_until(step: Callable[[], T], done: Callable[[T], bool], within_s: float, every_s: float,
               since: Optional[float] = None, max_polls: Optional[int] = None) -> Polled[T]:
    """Calls `step` until `done` holds for its result, with `every_s` between calls; the first call
    is made at once, and no later call starts after `within_s` from `since` (a time.monotonic();
    default now) nor after `max_polls` calls. A check that waits for something to change (a key
    revoked, a counter moved, a log line written, a request arrived, a gateway back) waits here, so
    every such wait is bounded in time and in count and says how long it took. The default count
    allows one call per `every_s` of the window, and two more."""
    t0 = time.monotonic() if since is None else since
    limit = max_polls if max_polls is not None else 2 + int(max(within_s, 0.0) / max(every_s, 0.01))
    results: list[T] = []
    while True:
        results.append(step())
        met = bool(done(results[-1]))
        if met or len(results) >= limit or time.monotonic() + every_s - t0 > within_s:
            break
        time.sleep(every_s)
        if time.monotonic() - t0 > within_s:   # slept past the window: a busy machine
            break
    return Polled(results, met, round(time.monotonic() - t0, 3))


def provider_usage(entry: dict[str, Any]) -> Any:
    """The usage a provider reported for a journal entry, in OpenAI's fields whatever its own shape
    (Anthropic's input_tokens, Gemini's usageMetadata, Ollama's eval_count): what a gateway speaking
    chat completions should pass on. Older journals have only `answer_usage`."""
    return entry["usage"] if "usage" in entry else entry.get("answer_usage")


def require_answer(ex: Exchange, what: str = "the gateway") -> None:
    """Raises Deviation when the exchange did not complete (hang, reset, garbage)."""
    if ex.error:
        raise Deviation(f"{what} gave no complete answer: {ex.error}", {"exchange": ex.evidence()})


def require_2xx(ex: Exchange) -> None:
    """Raises Deviation unless the exchange completed with a 2xx status."""
    require_answer(ex)
    if ex.status is None or not 200 <= ex.status < 300:
        raise Deviation(f"expected a 2xx answer, got HTTP {ex.status}", {"exchange": ex.evidence()})


class CheckContext:
    def __init__(self, cfg: HarnessConfig, gateway: GatewayClient, providers: dict[str, ProviderControl],
                 gateway_key: Optional[str], claim_id: str = "", routes: Any = None) -> None:
        from harness.world.routes import Routes
        self.cfg, self.gateway, self.providers = cfg, gateway, providers
        self.gateway_key = gateway_key
        self.routes = routes or Routes(cfg)     # paths and headers per model (templates in harness.yaml)
        self.claim_id = claim_id
        self.chaos = None                        # a ChaosControl when the world has a fault proxy
        self.chaos_proxies: dict[str, str] = {}  # provider -> proxy name
        self.process = None                      # a ProcessControl when the harness started the gateway
        self.gateway_logs: list[str] = []        # glob patterns of the files the gateway logs to (when started here)
        self.secrets_file: Optional[str] = None  # the world's WorldInfo.secrets_file: secrets a check makes go there
        self.begin_check()

    def begin_check(self) -> None:
        """Forgets the previous check's traffic. What a check sends is reviewed against the providers'
        journals once it has a verdict (checks/routing.py): its tags, the models it used, the
        (model, tag) of each request built here, and what the claim needs of a provider's route."""
        self.used_tags: list[str] = []
        self.used_models: list[str] = []
        self.sent: list[tuple[str, str]] = []
        self.needs_caps: set[str] = set()
        self.started_at = time.time()

    def needs(self, *capabilities: str) -> None:
        """What the claim needs of the provider's API (tools, parallel_tools, json): sent through a
        route without it, the claim cannot be judged there and is UNSUPPORTED, not FAIL."""
        self.needs_caps.update(capabilities)

    def _use(self, model: Optional[str]) -> Optional[str]:
        if model and model not in self.used_models:
            self.used_models.append(model)
        return model

    def tag(self) -> str:
        """A fresh tag: requests carrying it, their scripts and journal entries belong to this check."""
        slug = "".join(ch for ch in self.claim_id if ch.isalnum())[:16]
        tag = f"{slug}-{secrets.token_hex(4)}"
        self.used_tags.append(tag)
        return tag

    def model(self, kind: str = "openai") -> str:
        name = self.cfg.default_model(kind)
        if name is None:
            raise Unsupported(f"no model routed to an {kind}-style provider in the config")
        self._use(name)
        return name

    def role(self, name: str) -> str:
        value = getattr(self.cfg.roles, name)
        if not value:
            raise Unsupported(f"no model has the {name!r} role (roles.{name} in harness.yaml)")
        self._use(value)
        return value

    def slot(self, role: str, slot: int) -> str:
        """The model a stateful claim has to itself: the `slot`-th of a list role (roles.breaker...)."""
        models = getattr(self.cfg.roles, role)
        if slot >= len(models):
            raise Unsupported(f"these claims need {slot + 1} models of their own (roles.{role}), the config has {len(models)}")
        self._use(models[slot])
        return models[slot]

    def chain(self, model: str, min_len: int = 1) -> list[str]:
        chain = self.cfg.promises.fallbacks.get(model, [])
        if len(chain) < min_len:
            raise Unsupported(f"{model!r} has no fallback chain of {min_len}+ models (promises.fallbacks)")
        for m in [model, *chain]:
            self._use(m)
        return chain

    @property
    def policy(self):
        from harness.policies import resolve
        return resolve(self.cfg.promises.failover)

    def attempts(self, tag: str, models: list[str]) -> list[dict[str, Any]]:
        """Every upstream request carrying `tag`, at the providers of `models`, in time order."""
        seen, out = set(), []
        for m in models:
            prov = self.provider_of(m)
            if prov.name in seen:
                continue
            seen.add(prov.name)
            out += prov.journal(tag=tag)
        return sorted(out, key=lambda e: e["t_received"])

    def provider_of(self, model: str) -> ProviderControl:
        self._use(model)
        return self.providers[self.cfg.model(model).provider]

    def _sending(self, model: str, tag: str) -> None:
        self._use(model)
        self.sent.append((model, tag))

    def model_headers(self, model: Optional[str]) -> dict[str, str]:
        return self.routes.model_headers(model)

    def path(self, kind: str, model: Optional[str] = None) -> str:
        """The gateway's route for a request of `kind` about `model` (target.paths / models[].paths)."""
        return self.routes.path(kind, model)

    def require_key(self, what: str) -> None:
        """Raises Unsupported for a claim about client keys when the gateway takes none."""
        if not self.cfg.target.auth.takes_key:
            raise Unsupported(f"the gateway takes no client key (target.auth), so {what} is not offered")

    # -- request builders -------------------------------------------------------------------
    def chat(self, model: str, tag: str, *, stream: bool = False, prompt: str = "Say something.",
             deadline_s: Optional[float] = None, on_event: Any = None, close_after_events: Optional[int] = None,
             **extra: Any) -> Exchange:
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": f"{prompt} [h:{tag}]"}],
                                **extra}
        self._sending(model, tag)
        if stream:
            body["stream"] = True
        return self.gateway.request("POST", self.path("chat", model), body, stream=stream,
                                    headers=self.model_headers(model), deadline_s=deadline_s, on_event=on_event,
                                    close_after_events=close_after_events)

    def messages(self, model: str, tag: str, *, stream: bool = False, prompt: str = "Say something.",
                 **extra: Any) -> Exchange:
        body: dict[str, Any] = {"model": model, "max_tokens": 64,
                                "messages": [{"role": "user", "content": f"{prompt} [h:{tag}]"}], **extra}
        self._sending(model, tag)
        if stream:
            body["stream"] = True
        headers = {"anthropic-version": "2023-06-01", **self.model_headers(model)}
        return self.gateway.request("POST", self.path("messages", model), body, stream=stream, headers=headers)

    def responses(self, model: str, tag: str, *, stream: bool = False, prompt: str = "Say something.") -> Exchange:
        body: dict[str, Any] = {"model": model, "input": f"{prompt} [h:{tag}]"}
        self._sending(model, tag)
        if stream:
            body["stream"] = True
        return self.gateway.request("POST", self.path("responses", model), body, stream=stream,
                                    headers=self.model_headers(model))

    def journal(self, model: str, tag: str, settle_s: float = 0.0) -> list[dict[str, Any]]:
        if settle_s:
            time.sleep(settle_s)
        return self.provider_of(model).journal(tag=tag)


CheckFn = Callable[..., Verdict]
REGISTRY: dict[str, CheckFn] = {}


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} registered twice")
        REGISTRY[name] = fn
        return fn
    return register


def load_all() -> dict[str, CheckFn]:
    """Imports every check module so their decorators fill the registry."""
    import importlib
    import pkgutil

    import harness.checks as pkg
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name != "base":
            importlib.import_module(f"harness.checks.{mod.name}")
    return REGISTRY


# The promises each family of checks reads: a verdict's evidence names where they come from
# (promises.sources in harness.yaml: a file and line of the gateway's own code, or its docs).
PROMISES_READ = {
    "failover": ("fallbacks", "failover"), "retries": ("retries", "fallbacks", "total_deadline_s", "request_timeout_s"),
    "breaker": ("breaker", "fallbacks"), "timeouts": ("request_timeout_s", "stream_timeout_s", "total_deadline_s"),
    "ratelimit": ("rate_limit",), "cache": ("cache",), "auth": ("auth",), "models": ("fallbacks",),
    "health": ("health_status_field", "health_requires_auth"), "usage": ("usage_estimated_when_missing",),
    "idempotency": ("idempotency_header",),
    "chaos": ("request_timeout_s", "stream_timeout_s", "total_deadline_s", "health", "health_requires_auth"),
    "provider_errors": ("context_window_fallbacks", "content_policy_fallbacks", "fallbacks", "failover"),
    "streams": ("stream_timeout_s", "ttft_overhead_ms", "fallbacks"), "routing": ("routing",),
    "aliases": ("aliases",), "request_id": ("request_id",), "security": ("max_body_bytes", "auth"),
    "process": ("process",), "concurrency": ("concurrency",), "metrics": ("metrics",),
    "keys": ("keys", "auth"),
}


def promise_sources(cfg: HarnessConfig, check_name: str) -> dict[str, str]:
    read = PROMISES_READ.get(check_name.split(".")[0], ())
    return {k: v for k, v in cfg.promises.sources.items() if k.split(".")[0] in read}


def run(ctx: CheckContext, name: str, params: dict[str, Any]) -> Verdict:
    """Runs a check, then has its verdict reviewed against what the providers' journals show of its
    traffic (checks/routing.py): a route the mock does not serve makes it ERROR "not judged", a
    route without what the claim needs makes it UNSUPPORTED, a request that never reached its
    model's provider is said in the reason."""
    from harness.checks.routing import review
    t0 = time.monotonic()
    ctx.begin_check()
    try:
        verdict = REGISTRY[name](ctx, **params)
    except Outcome as exc:
        verdict = exc.verdict()
    verdict = review(ctx, verdict)
    if sources := promise_sources(ctx.cfg, name):
        verdict.evidence.setdefault("promise_sources", sources)
    verdict.duration_s = round(time.monotonic() - t0, 3)
    return verdict
