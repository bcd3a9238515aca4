"""harness.yaml: what gateway to test, how to reach or start it, and what it promises.

A new gateway is a new harness.yaml, never new code. Errors name the field on one line; the CLI
turns `ConfigError` into exit code 2 without a traceback.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal, Optional, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness import yaml_strict

TARGETS = Path(__file__).parent / "targets"
EMBEDDED_DEFAULT = TARGETS / "litellm.yaml"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
PROTOCOLS = ("openai_chat", "openai_responses", "anthropic_messages")
OPENAI_COMPATIBLE = ("openai", "llamacpp", "vllm")   # provider kinds that speak OpenAI's API


def gateways_bin() -> Path:
    """Where `bash ci/setup.sh --gateways` puts the gateways it builds (.gateways/bin of the checkout);
    HARNESS_GATEWAYS_BIN points elsewhere (an installed harness, a shared build)."""
    env = os.environ.get("HARNESS_GATEWAYS_BIN")
    return Path(env) if env else Path(__file__).resolve().parent.parent / ".gateways" / "bin"


def static_context() -> dict[str, Any]:
    """What a harness.yaml may name before anything runs (start commands, version commands, ports)."""
    import sys
    return {"bin_dir": str(Path(sys.executable).parent), "python": sys.executable,
            "gateways_bin": str(gateways_bin()), "env": dict(os.environ)}


def render_static(text: str) -> str:
    """`text` as a jinja2 template over static_context(); a template error is a ValueError (a field error)."""
    import jinja2
    try:
        return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render(**static_context())
    except jinja2.TemplateError as exc:
        raise ValueError(f"template error: {exc}") from None


class ConfigError(Exception):
    """A harness.yaml (or catalog) problem, already phrased for the user: 'file: field: problem'."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartSpec(_Strict):
    command: list[str] = Field(min_length=1)   # each item is a jinja2 template: {{ port }}, {{ config_path }}...
    config_template: Optional[str] = None      # jinja2 file, relative to this harness.yaml
    config_filename: str = "gateway-config.yaml"
    env: dict[str, str] = {}
    ready_path: str = "/health"
    ready_status: list[int] = []               # statuses that mean "ready" (default: any answer below 500)
    ready_timeout_s: float = Field(120, gt=0, le=1800)
    stop_timeout_s: float = Field(10, gt=0, le=300)
    # More files rendered into the run's directory beside the config: path there -> jinja2 template
    # file (relative to this harness.yaml). For gateways that read a second file (a state or cache seed).
    files: dict[str, str] = {}
    ports: list[str] = []                      # more free ports, by name: {{ ports.web }} (a gateway with two listeners)
    logs: list[str] = []                       # files the gateway logs to, relative to the run's directory: kept with its log


class AuthSpec(_Strict):
    """How clients present a key: `Authorization: Bearer <key>` (the default), `x-api-key: <key>`
    (scheme: null), any header of one's choice; `header: null` or `scheme: none` for a gateway that
    takes no client key at all (its auth claims are then UNSUPPORTED, never FAIL)."""
    header: Optional[str] = "Authorization"
    scheme: Optional[str] = "Bearer"
    # Where the key comes from: "generate" (a fresh random key per run, handed to the config
    # template), the name of an environment variable, or, discouraged, a literal.
    key: Optional[str] = None
    key_env: Optional[str] = None

    @model_validator(mode="after")
    def _one_source(self) -> "AuthSpec":
        if self.key and self.key_env:
            raise ValueError("give either key or key_env, not both")
        if not self.takes_key and (self.key or self.key_env):
            raise ValueError("a gateway that takes no key (header: null or scheme: none) has no key or key_env")
        return self

    @property
    def takes_key(self) -> bool:
        return self.header is not None and (self.scheme or "").lower() != "none"

    def value(self, key: Optional[str]) -> Optional[str]:
        """The header value that presents `key` (None when there is no key to present)."""
        if not key or not self.takes_key:
            return None
        return f"{self.scheme} {key}" if self.scheme else key

    def headers(self, key: Optional[str]) -> dict[str, str]:
        value = self.value(key)
        return {self.header: value} if value and self.header else {}


class Paths(_Strict):
    """The gateway's routes. Each may be a jinja2 template over `model` (the request's model; for a
    request that names none, such as the model list, the default OpenAI model), `provider` (that
    model's provider: name, kind, url) and `providers`: `/{{ model.name }}/s1/v1/chat/completions`
    for a gateway that routes by URL rather than by model name. models[].paths overrides per model."""
    chat: str = "/v1/chat/completions"
    responses: str = "/v1/responses"
    messages: str = "/v1/messages"
    models: str = "/v1/models"
    health: str = "/health"
    realtime: str = "/v1/realtime"


class VersionSpec(_Strict):
    """Where the gateway's version is read, for the report's provenance (one of the three)."""
    package: Optional[str] = None          # a Python distribution installed beside the harness (LiteLLM)
    command: Optional[list[str]] = None    # a command whose first output line is the version
    path: Optional[str] = None             # a path on the running gateway ...
    field: Optional[str] = None            # ... and the dotted JSON field holding the version

    @field_validator("command")
    @classmethod
    def _rendered(cls, v: Optional[list[str]]) -> Optional[list[str]]:
        # {{ gateways_bin }}, {{ bin_dir }}: the same names a start command may use
        return [render_static(part) for part in v] if v else v

    @model_validator(mode="after")
    def _one(self) -> "VersionSpec":
        if sum(x is not None for x in (self.package, self.command, self.path)) != 1:
            raise ValueError("give exactly one of package, command or path")
        return self


class CoverageSpec(_Strict):
    """How `harness run --gateway-coverage` measures a Python gateway it starts (coverage.py)."""
    source: list[str] = Field(min_length=1)   # packages to measure (source_pkgs), e.g. [litellm]
    omit: list[str] = []                      # file patterns left out


class Target(_Strict):
    name: str = Field(pattern=NAME)
    install: Optional[str] = None      # how to install the gateway, named when its binary is missing
    version: Optional[VersionSpec] = None   # how to ask the gateway's version (reports say "unknown" without)
    coverage: Optional[CoverageSpec] = None  # how to measure it with --gateway-coverage (Python gateways)
    url: Optional[str] = None          # a gateway that is already running
    start: Optional[StartSpec] = None  # or one the harness starts and stops itself
    auth: AuthSpec = AuthSpec()
    headers: dict[str, str] = {}       # sent with every request (templates, like paths)
    paths: Paths = Paths()
    protocols: list[Literal["openai_chat", "openai_responses", "anthropic_messages", "openai_realtime"]] = ["openai_chat"]

    @field_validator("url")
    @classmethod
    def _http(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _url_or_start(self) -> "Target":
        if bool(self.url) == bool(self.start):
            raise ValueError("give exactly one of url (a running gateway) or start (a command to run)")
        return self


class ProviderCfg(_Strict):
    name: str = Field(pattern=NAME)
    # llamacpp and vllm: OpenAI-compatible local servers, each with its own error shape and usage fields
    kind: Literal["openai", "anthropic", "gemini", "ollama", "llamacpp", "vllm"]
    # 0: a free port; fix it when an external gateway points here, as a number or a template over
    # the environment ("{{ env.MOCK_OPENAI_PORT | default(18001) }}")
    port: int = Field(0, ge=0, le=65535)
    models: list[str] = []
    refuses_connections: bool = False     # no server at all: its URL points at a port nobody listens on

    @field_validator("port", mode="before")
    @classmethod
    def _port_template(cls, v: Any) -> Any:
        if isinstance(v, str) and "{{" in v:
            v = render_static(v).strip()
            if not v.isdigit():
                raise ValueError(f"the template gives {v!r}, not a port number")
            return int(v)
        return v


class ModelCfg(_Strict):
    name: str = Field(min_length=1)
    provider: str
    upstream_model: Optional[str] = None   # what the provider sees; default: the name
    headers: dict[str, str] = {}           # extra headers the client must send for this model (templates)
    paths: dict[Literal["chat", "responses", "messages", "models", "realtime"], str] = {}   # this model's routes (templates)
    gateway: dict[str, Any] = {}           # free-form settings for the gateway's config template only

    @property
    def upstream(self) -> str:
        return self.upstream_model or self.name


class Refusal(_Strict):
    status: int = Field(ge=400, le=599)
    headers: list[str] = []            # headers the refusal carries (retry-after...)


class Breaker(_Strict):
    opens_after: int = Field(ge=1)     # failures after which a provider gets no traffic
    cooldown_s: float = Field(gt=0)    # how long it gets none
    half_open: bool = True             # after the cooldown one trial decides: success closes, failure reopens
    counts: Literal["consecutive", "window"] = "consecutive"   # does a success reset the count?
    # When every deployment of a model is cooling down: the caller is refused at once with this status
    # and these headers, and no provider is called (None: nothing promised about that moment).
    refusal: Optional[Refusal] = None


class RateLimit(_Strict):
    rpm: int = Field(ge=1)             # requests allowed per window, per key and model
    window_s: float = Field(60, gt=0)
    status: int = 429
    headers: list[str] = []            # headers a refused request carries (retry-after, x-ratelimit-...)
    per: list[Literal["key", "model"]] = ["key", "model"]


class Cache(_Strict):
    ttl_s: float = Field(gt=0)
    varies_on: list[str] = ["model", "messages", "temperature"]


class Failover(_Strict):
    """When the gateway moves to the next model of a fallback chain. A preset from
    matrices/policies.yaml fills what is not given."""
    preset: Optional[str] = None
    on_status: Optional[list[int]] = None
    on_connect_error: Optional[bool] = None
    on_disconnect: Optional[bool] = None
    reports_model: Literal["answering", "requested", "any"] = "any"   # `model` in the response after failover
    metadata_header: Optional[str] = None   # response header whose value names the answering provider's URL
    # A primary that failed and is healthy again gets the traffic back: a request sent this long after
    # it recovered is served by it, not by a fallback (None: nothing promised; a breaker's cooldown
    # counts against it, so with one this is at least its cooldown_s)
    returns_to_primary_s: Optional[float] = Field(None, gt=0)


class Retries(_Strict):
    count: int = Field(0, ge=0)            # extra attempts on the same provider before failing over
    on_status: list[int] = [408, 429, 500, 502, 503, 504]
    backoff_min_s: Optional[float] = Field(None, ge=0)
    honors_retry_after: bool = False
    max_retry_after_s: float = Field(5, gt=0)
    on_disconnect: bool = False            # a connection the provider drops before answering is retried too
    # An attempt that hit request_timeout_s (a provider that accepts and never answers) is retried `count`
    # times too (True) or never (False); None: not said, and the silent-route count is UNSUPPORTED.
    on_timeout: Optional[bool] = None


class Concurrency(_Strict):
    """A cap on the requests a model (deployment) has in flight: the one over it is refused at once
    with one of `statuses`, never queued and never sent to the provider; once a slot frees, a new
    request is served. The check holds max_in_flight requests at the provider, so it is bounded."""
    max_in_flight: int = Field(ge=1, le=16)
    statuses: list[int] = Field([429, 503], min_length=1)
    answered_within_s: float = Field(gt=0, le=30)   # the refusal reaches the caller within this


class Auth(_Strict):
    refuses_missing_key: bool = True
    refuses_wrong_key: bool = True
    statuses: list[int] = [401, 403]
    revoked_key_env: Optional[str] = None  # a key the gateway has revoked, to show it is refused
    expired_key_env: Optional[str] = None


class RoutingGroup(_Strict):
    """A model served by several deployments (each on a provider of its own) and how the gateway
    chooses one. The check reads the choices from the providers' journals."""
    strategy: Literal["weighted", "least-busy", "latency-based", "cost-based"]
    # provider -> its weight (weighted: the share of requests it gets) or its price per token
    # (cost-based: the cheapest serves); least-busy and latency-based need only the names.
    deployments: dict[str, float] = Field(min_length=2)
    requests: int = Field(60, ge=10, le=500)          # how many requests a weighted split is judged on
    tolerance: float = Field(0.2, gt=0, lt=1)         # how far each share may stray from its weight's


class Aliases(_Strict):
    """How model names resolve besides the configured aliases."""
    # A prefix naming a provider ("mockprefix/") -> that provider: `prefix/name` is served by it as
    # `name`, even when `name` is also an alias routed elsewhere (the explicit provider wins).
    provider_prefixes: dict[str, str] = {}


class HealthContract(_Strict):
    """What the gateway's health routes promise beyond `health` (the status route)."""
    liveness_path: Optional[str] = None       # answers 200 without a key: the process runs
    deployments_path: Optional[str] = None    # reports each deployment healthy or not (checks its providers)
    deployments_auth: bool = True             # ...to an authenticated caller
    unhealthy_field: str = "unhealthy_endpoints"   # the JSON list of deployments found unhealthy there
    healthy_field: str = "healthy_endpoints"


class RequestId(_Strict):
    """A request id on every response, for the caller to quote and the operator to find."""
    header: str                              # the response header that carries it
    echoes: bool = False                     # a client-sent id (in the same header) comes back unchanged
    forwarded: Optional[bool] = None         # it reaches the provider in the same header (None: not promised)
    # The id the caller got is written to the gateway's own log (the one the harness keeps of a gateway
    # it started): "errors" for requests that failed, "all" for every request (None: not promised).
    logged: Optional[Literal["errors", "all"]] = None


class MetricsPromise(_Strict):
    """A Prometheus metrics route whose figures agree with what the callers saw (checks/metrics.py).
    Names are sample names as the route writes them (a counter's `_total` included); a series is
    picked by `model_label` (the requested model) and every series of it is summed."""
    path: str = Field("/metrics", pattern=r"^/")
    requests: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")   # counts every request
    errors: Optional[str] = Field(None, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")   # counts the failed ones
    latency: Optional[str] = Field(None, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")  # histogram/summary: its _sum, _count
    latency_unit: Literal["s", "ms"] = "s"
    latency_counts: Literal["all", "success"] = "all"   # which requests the latency figure observes
    model_label: str = "model"
    # The latency figure's mean may differ from the mean the harness measured by this much plus this
    # share of it: a gateway times from after it read the request to before it wrote the answer.
    tolerance_ms: float = Field(50, ge=0)
    tolerance_ratio: float = Field(0.1, ge=0, lt=1)
    settle_s: float = Field(5, gt=0, le=60)   # counters may move after the answer (logged in the background)


class ProcessPromise(_Strict):
    """What the gateway promises of its own process, judged by killing it (the harness must have started it)."""
    drains_on_sigterm: bool = False   # SIGTERM: requests in flight complete, then it exits
    drain_timeout_s: float = Field(30.0, gt=0)   # ...and it exits within this of the signal
    # Growth of the gateway's process group across a soak of chat requests, after a warm-up
    # (checks/resources.py); None: not promised, and the claim is UNSUPPORTED (with what was measured).
    rss_growth_mb_per_1000: Optional[float] = Field(None, gt=0)   # resident memory, MiB per 1,000 requests
    fd_growth_max: Optional[int] = Field(None, ge=0)       # open file descriptors more than after the warm-up
    thread_growth_max: Optional[int] = Field(None, ge=0)   # threads more than after the warm-up


ADMIN_PLACEHOLDERS = ("key", "alias", "expires_s", "budget")
# What each call of promises.keys is sent (checks/keys.py fills exactly these): a placeholder known to
# the API but not sent by this call (a create body holding {budget}) is refused here, with the field
# named, rather than failing the check at run time.
CALL_PLACEHOLDERS = {"create": ("key", "alias"), "revoke": ("key", "alias"),
                     "create_expiring": ("key", "alias", "expires_s"), "create_budgeted": ("key", "alias", "budget"),
                     "spend": ("key", "alias")}
PLACEHOLDER = r"\{([A-Za-z_]\w*)\}"


def admin_placeholders(value: Any) -> set[str]:
    """The {names} used in a template: a string, or the strings anywhere inside a JSON-like body."""
    import re
    if isinstance(value, str):
        return set(re.findall(PLACEHOLDER, value))
    if isinstance(value, dict):
        return set().union(*(admin_placeholders(v) for v in value.values()), *(admin_placeholders(k) for k in value))
    if isinstance(value, list):
        return set().union(*(admin_placeholders(v) for v in value))
    return set()


class AdminCall(_Strict):
    """One call of the gateway's admin API (checks/keys.py). `path` and the strings of `body` may hold
    {key} (the client key: one the harness makes, or the one the gateway made, read from `field`),
    {alias} (a label naming the check), {expires_s} and {budget}; a string that is one placeholder
    alone becomes the value itself (a number stays a number)."""
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = Field(pattern=r"^/")
    body: Any = None
    # The dotted field of the JSON answer holding what the call yields: the new key (a create call;
    # without it the harness makes the key and sends it as {key}), or the key's spend (the spend call).
    field: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

    @model_validator(mode="after")
    def _known_placeholders(self) -> "AdminCall":
        unknown = sorted(admin_placeholders(self.path) | admin_placeholders(self.body))
        unknown = [n for n in unknown if n not in ADMIN_PLACEHOLDERS]
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}} (known: "
                             + ", ".join(f"{{{n}}}" for n in ADMIN_PLACEHOLDERS) + ")")
        return self

    def uses(self, name: str) -> bool:
        return name in admin_placeholders(self.path) | admin_placeholders(self.body)


class Price(_Strict):
    input: float = Field(ge=0)     # per prompt token
    output: float = Field(ge=0)    # per completion token


KEY_OPERATIONS = ("create", "revoke", "expiry", "budget", "spend")


class Keys(_Strict):
    """The gateway's admin API for client keys, as data (CM-28): how to create a key, revoke it, create
    one that expires or one with a budget, read a key's spend. The admin credential is the run's own
    key (target.auth: LiteLLM's master key) unless `admin_key_env` names an environment variable;
    either way it is a secret, never written anywhere. What the gateway lacks is left out, with why
    in `not_offered` (its claims are then UNSUPPORTED with that reason, never FAIL)."""
    admin_key_env: Optional[str] = None
    create: Optional[AdminCall] = None
    revoke: Optional[AdminCall] = None
    create_expiring: Optional[AdminCall] = None   # a key that expires {expires_s} after it was made
    create_budgeted: Optional[AdminCall] = None   # a key with a budget of {budget}
    spend: Optional[AdminCall] = None             # a key's spend so far (`field`)
    # A change takes effect (a new key accepted, a revoked or expired one refused, a spent budget
    # enforced, spend reported) at most this long after the admin API answered, or the key expired.
    within_s: float = Field(2.0, gt=0, le=60)
    expires_s: float = Field(2.0, gt=0, le=60)   # the lifetime of the expiring key the check makes
    budget: Optional[float] = Field(None, gt=0)  # the budget of the budgeted key, in the price's currency
    model: Optional[str] = None                  # the model the key claims use (default: the OpenAI default)
    price: Optional[Price] = None                # what that model costs per token, by the gateway's own prices
    spend_tolerance: float = Field(0.01, ge=0, lt=1)   # relative: reported spend vs usage times price
    # The statuses that refuse a key whose budget is spent (CM-28.4); any other answer is not that refusal.
    # LiteLLM answers litellm.budget_exceeded_status_code, 422 since it was changed from 429
    # (litellm/__init__.py:413, exceptions.py:1092, proxy/auth/auth_exception_handler.py:51-57 @1.108.7);
    # 400, 402 (Payment Required), 403 and 429 are the other plausible refusals; a target whose gateway
    # answers something else says so here.
    budget_statuses: list[int] = Field(default_factory=lambda: [400, 402, 403, 422, 429], min_length=1)
    not_offered: dict[Literal["all", "create", "revoke", "expiry", "budget", "spend"], str] = {}

    @model_validator(mode="after")
    def _coherent(self) -> "Keys":
        declared = {"create": self.create, "revoke": self.revoke, "expiry": self.create_expiring,
                    "budget": self.create_budgeted, "spend": self.spend}
        for op, why in self.not_offered.items():
            if not why.strip():
                raise ValueError(f"not_offered.{op}: say why")
            if declared.get(op) is not None:
                raise ValueError(f"not_offered.{op}: the operation is declared too")
        wrong = [s for s in self.budget_statuses if not 400 <= s <= 599]
        if wrong:   # a 2xx or 3xx is an answer, never a refusal
            raise ValueError(f"budget_statuses: {wrong[0]} is not an error status (400-599)")
        for name, sent in CALL_PLACEHOLDERS.items():
            call = getattr(self, name)
            unsent = sorted((admin_placeholders(call.path) | admin_placeholders(call.body)) - set(sent)) if call else []
            if unsent:
                raise ValueError(f"{name}: {{{unsent[0]}}} is not sent with this call (it sends "
                                 + ", ".join(f"{{{n}}}" for n in sent) + ")")
        for name, call in (("create", self.create), ("create_expiring", self.create_expiring),
                           ("create_budgeted", self.create_budgeted)):
            if call is not None and call.field is None and not call.uses("key"):
                raise ValueError(f"{name}: give `field` (where the answer holds the new key) or send {{key}} "
                                 "(a key the harness makes) in its path or body")
        if self.create_expiring is not None and not self.create_expiring.uses("expires_s"):
            raise ValueError("create_expiring: its path or body must send {expires_s}")
        if self.create_budgeted is not None:
            if not self.create_budgeted.uses("budget"):
                raise ValueError("create_budgeted: its path or body must send {budget}")
            if self.budget is None:
                raise ValueError("budget: required with create_budgeted")
        for name, call in (("revoke", self.revoke), ("spend", self.spend)):
            if call is not None and not call.uses("key"):
                raise ValueError(f"{name}: its path or body must name the key, {{key}}")
        if self.spend is not None and self.spend.field is None:
            raise ValueError("spend: give `field`, where the answer holds the key's spend")
        if (self.spend is not None or self.create_budgeted is not None) and self.price is None:
            raise ValueError("price: required with spend or create_budgeted (spend is usage times price)")
        return self

    def why_not(self, op: str) -> Optional[str]:
        """Why the gateway does not offer `op` (one of KEY_OPERATIONS), when the target says so."""
        return self.not_offered.get(op) or self.not_offered.get("all")

    def admin_credential(self, source: str) -> Optional[str]:
        """The admin key from `admin_key_env` (None: the run's own key is the admin key). Read where a
        run starts, not when the file is loaded (`harness validate` needs no secrets), so a missing
        variable stops the run at once, exit 2, instead of every keys claim failing to be judged."""
        if not self.admin_key_env:
            return None
        value = os.environ.get(self.admin_key_env)
        if not value:
            raise ConfigError(f"{source}: promises.keys.admin_key_env: environment variable {self.admin_key_env} "
                              "is not set")
        return value


class Promises(_Strict):
    """What the gateway says it does. Checks read their numbers from here, never from code."""
    fallbacks: dict[str, list[str]] = {}
    failover: Failover = Failover(preset="5xx-and-timeouts")
    retries: Retries = Retries()
    request_timeout_s: Optional[float] = Field(None, gt=0)   # a silent provider costs at most this per attempt
    total_deadline_s: Optional[float] = Field(None, gt=0)    # ...and a whole request at most this
    stream_timeout_s: Optional[float] = Field(None, gt=0)    # a stalled stream is ended within this
    breaker: Optional[Breaker] = None
    rate_limit: Optional[RateLimit] = None
    concurrency: Optional[Concurrency] = None   # a cap on requests in flight per model (roles.concurrency)
    cache: Optional[Cache] = None
    idempotency_header: Optional[str] = None
    auth: Auth = Auth()
    usage_estimated_when_missing: bool = False
    health_requires_auth: bool = False
    health_status_field: Optional[str] = "status"   # also: the health route answers a JSON object
    health: HealthContract = HealthContract()
    # A 400 context_length_exceeded (or content_policy_violation) from the provider sends the request
    # down this model's chain of its own (LiteLLM: context_window_fallbacks, content_policy_fallbacks);
    # a model with none gets the error, its code intact.
    context_window_fallbacks: dict[str, list[str]] = {}
    content_policy_fallbacks: dict[str, list[str]] = {}
    # A stream's first token reaches the caller at most this long after the provider sent it
    # (None: nothing promised; the check adds a measuring slack for a shared machine).
    ttft_overhead_ms: Optional[float] = Field(None, ge=0)
    routing: dict[str, RoutingGroup] = {}    # model -> the deployments behind it and how one is chosen
    aliases: Aliases = Aliases()
    request_id: Optional[RequestId] = None
    metrics: Optional[MetricsPromise] = None   # a Prometheus route agreeing with what callers saw
    process: ProcessPromise = ProcessPromise()
    max_body_bytes: Optional[int] = Field(None, ge=1024)   # a bigger body is refused (413 or another 4xx), not forwarded
    keys: Optional[Keys] = None   # the admin API for client keys: create, revoke, expiry, budgets, spend (CM-28)
    # Where each promise comes from: promise name (retries, breaker, failover...) -> "file:line@tag"
    # or a URL. Documentation only: the report shows it beside the verdicts that rest on the promise.
    sources: dict[str, str] = {}

    @field_validator("sources")
    @classmethod
    def _known(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            head, _, rest = key.partition(".")
            if head == "protocols":   # offering a protocol (target.protocols) promises its published schema (CM-27)
                if rest not in PROTOCOLS:
                    raise ValueError(f"{key!r} names no protocol (protocols.<one of {', '.join(PROTOCOLS)}>)")
                continue
            if head not in cls.model_fields or head == "sources":
                raise ValueError(f"{key!r} names no promise")
        return v

    @field_validator("retries", mode="before")
    @classmethod
    def _retries_shorthand(cls, v: Any) -> Any:
        return {"count": v} if isinstance(v, int) else v


class Roles(_Strict):
    """Which models the resilience checks use. Stateful claims (breakers, caches, rate limits)
    get models of their own so that parallel checks never share their state."""
    failover: Optional[str] = None          # a model with a fallback chain of at least two
    failover_refused: Optional[str] = None  # a model whose provider refuses connections, with a fallback
    retry: Optional[str] = None             # a model whose failures are retried, not failed over
    timeout: Optional[str] = None           # a model with a fallback, for slow-provider checks
    breaker: list[str] = []                 # one model per breaker claim, each with a fallback
    cache: Optional[str] = None
    cache_other: Optional[str] = None       # a second cached model, for "a different model misses"
    rate_limit: list[str] = []             # one model per rate-limit claim: each starts with a fresh window
    concurrency: list[str] = []            # one model per concurrency-limit claim: each has its slots to itself
    chaos: Optional[str] = None             # a model whose provider link runs through the fault proxy
    no_fallback: Optional[str] = None       # a model with no fallback of any kind: provider errors reach the caller
    metrics: Optional[str] = None           # a model only the metrics claims send to: its counters move with them alone


class Deadlines(_Strict):
    connect_s: float = Field(5, gt=0, le=300)
    request_s: float = Field(30, gt=0, le=3600)   # a whole plain exchange
    stream_s: float = Field(60, gt=0, le=3600)    # a whole stream
    read_s: float = Field(20, gt=0, le=3600)      # silence between two reads


class Chaos(_Strict):
    """Network faults between the gateway and chosen providers, through a Toxiproxy API server."""
    enabled: bool = False
    toxiproxy_url: Optional[str] = None    # a real Toxiproxy server; default: the embedded fault proxy
    seed: int = 0                          # replays every random choice of the embedded fault proxy
    providers: list[str] = []              # providers whose link from the gateway runs through the proxy
    recovery_s: float = Field(10, gt=0)    # after a fault is lifted, the gateway serves normally within this

    @field_validator("toxiproxy_url")
    @classmethod
    def _loopback(cls, v: Optional[str]) -> Optional[str]:
        from harness.netguard import is_loopback_url
        if v is not None and not (v.startswith("http://") and is_loopback_url(v)):
            raise ValueError("must be a loopback http:// URL: chaos only ever targets this machine")
        return v.rstrip("/") if v else v


class Gate(_Strict):
    """A release gate on the load lane: a percentile under a bound, or an error rate under one,
    optionally "at Y rps" (min_rps: a run that did not reach the rate cannot pass) and only for
    one profile. Each gate is a claim in the report (id, default CM-21.<n>)."""
    id: Optional[str] = Field(None, pattern=r"^[A-Z]+-[0-9]+(\.[0-9]+)*$")
    metric: Literal["latency", "ttft", "itl", "e2e", "tpot", "ttft_intended", "e2e_intended", "fan", "error_rate"]
    percentile: Optional[float] = Field(None, gt=0, le=100)
    max_ms: Optional[float] = Field(None, gt=0)
    max_rate: Optional[float] = Field(None, ge=0, le=1)
    min_rps: Optional[float] = Field(None, gt=0)
    profile: Optional[str] = None

    @model_validator(mode="after")
    def _shape(self) -> "Gate":
        if self.metric == "error_rate":
            if self.max_rate is None:
                raise ValueError("an error_rate gate needs max_rate")
        elif self.percentile is None or self.max_ms is None:
            raise ValueError(f"a {self.metric} gate needs percentile and max_ms")
        return self


class LoadLane(_Strict):
    """`harness run` ends with these load profiles, one after another (after every other claim, so
    the load cannot disturb them), and reports stream buffering and the gates as claims of the
    Load lane: a gate without `profile:` is judged in every profile and fails if it fails in one."""
    profile: Optional[str] = None   # one name in matrices/load, or a YAML path ...
    profiles: list[str] = []        # ... or several (say a closed-model smoke and a stepped open model)
    workers: int = Field(0, ge=0, le=64)
    direct: bool = True          # also run them straight at the provider, for the overhead figures

    @model_validator(mode="after")
    def _one_way(self) -> "LoadLane":
        if self.profile and self.profiles:
            raise ValueError("profile: give `profile` or `profiles`, not both")
        if len(set(self.profiles)) != len(self.profiles):
            raise ValueError("profiles: a profile is named twice")
        return self

    @property
    def names(self) -> list[str]:
        return list(self.profiles) or [self.profile or "smoke"]


class NotOfferedRoute(_Strict):
    """Routes a gateway does not offer on purpose (by provider, protocol, streaming and case; each
    left out means all): their smoke cells are NOT OFFERED, never sent. A matrix's own list and a
    target's smoke.not_offered both say it this way."""
    provider: Optional[str] = None
    protocol: Optional[Literal["openai_chat", "openai_responses", "anthropic_messages"]] = None
    stream: Optional[bool] = None
    case: Optional[str] = None       # one case of the matrix (text, tools, parallel_tools); default: every case
    why: str = Field(min_length=1)

    @field_validator("case")
    @classmethod
    def _known_case(cls, v: Optional[str]) -> Optional[str]:
        from harness.smoke.cases import CASES   # imported here: harness.smoke's modules import this one
        if v is not None and v not in CASES:
            raise ValueError(f"{v!r} is not one of {', '.join(CASES)}")
        return v


class SmokeNotOffered(NotOfferedRoute):
    """In a harness.yaml, routes can also be named by the shape of their provider."""
    kind: Optional[Literal["openai", "anthropic", "gemini", "ollama"]] = None   # every provider of this shape


class SmokeLane(_Strict):
    """`harness run` ends with this provider smoke matrix (a gateway of its own, serving the
    matrix's routes); the matrix goes into the report and each cell into junit.xml."""
    matrix: str = "default"      # a name in matrices/smoke, or a YAML path
    not_offered: list[SmokeNotOffered] = []   # what this gateway cannot serve, whatever the matrix


class RepoCfg(_Strict):
    """The repository lane: the gateway team's own tests (pytest and/or Go) run under coverage, and
    its own plan of claims mapped to them. Paths are relative to the harness.yaml."""
    path: str = "."                        # the team's repository
    plan: Optional[str] = None             # a Markdown table or CSV: id, test name, [section, risk, wave, check]
    mapping: Optional[str] = None          # YAML: claim id -> test ids, for links no marker or name gives
    namespace: str = Field("team:", min_length=1)   # the team's ids never collide with the harness's CM-...
    since: Optional[str] = None            # a git ref: the lane matrix counts tests added since
    langs: Optional[list[Literal["python", "go"]]] = None   # default: what the repository holds
    sources: Optional[list[str]] = None    # Python packages to measure (default: found in the repository)
    timeout_s: float = Field(900, gt=0, le=7200)


class Release(_Strict):
    """The release gate the report's decision line reads: a FAIL (or SAFE) of a claim in one of these
    waves, or of a load gate, blocks the release unless a waiver covers it."""
    blocking_waves: list[Literal["P0", "P1", "P2", "P3"]] = ["P0", "P1"]


class Defaults(_Strict):
    openai_model: Optional[str] = None       # the model conformance checks speak OpenAI to
    anthropic_model: Optional[str] = None    # the model routed to an Anthropic-style provider


class HarnessConfig(_Strict):
    version: Literal[1] = 1
    target: Target
    providers: list[ProviderCfg] = Field(min_length=1)
    models: list[ModelCfg] = Field(min_length=1)
    promises: Promises = Promises()
    deadlines: Deadlines = Deadlines()
    defaults: Defaults = Defaults()
    roles: Roles = Roles()
    chaos: Chaos = Chaos()
    gates: list[Gate] = []
    load: Optional[LoadLane] = None   # None: `harness run` has no load lane (`harness load` still works)
    smoke: Optional[SmokeLane] = None  # None: `harness run` has no smoke matrix (`harness smoke` still works)
    claims: list[str] = []    # claim ids or id prefixes to run; empty: all
    release: Release = Release()
    repo: Optional[RepoCfg] = None   # None: `harness run` has no repository lane (`harness repo` still works)
    waivers: Optional[str] = None   # a waivers file (known deviations, reason, expiry), relative to harness.yaml

    @model_validator(mode="after")
    def _references(self) -> "HarnessConfig":
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError("providers: names must be unique")
        for i, m in enumerate(self.models):
            if m.provider not in names:
                raise ValueError(f"models[{i}].provider: {m.provider!r} is not one of the providers ({', '.join(names)})")
        model_names = [m.name for m in self.models]
        for i, p in enumerate(self.chaos.providers):
            if p not in names:
                raise ValueError(f"chaos.providers[{i}]: {p!r} is not one of the providers")
        refs = [("defaults.openai_model", self.defaults.openai_model),
                ("defaults.anthropic_model", self.defaults.anthropic_model)]
        refs += [(f"roles.{k}", v) for k, v in self.roles.model_dump().items() if isinstance(v, str)]
        refs += [(f"roles.breaker[{i}]", v) for i, v in enumerate(self.roles.breaker)]
        refs += [(f"roles.rate_limit[{i}]", v) for i, v in enumerate(self.roles.rate_limit)]
        refs += [(f"roles.concurrency[{i}]", v) for i, v in enumerate(self.roles.concurrency)]
        for field, value in refs:
            if value is not None and value not in model_names:
                raise ValueError(f"{field}: {value!r} is not one of the models")
        for model, group in self.promises.routing.items():
            if model not in model_names:
                raise ValueError(f"promises.routing.{model}: not one of the models")
            for p in group.deployments:
                if p not in names:
                    raise ValueError(f"promises.routing.{model}.deployments.{p}: not one of the providers")
        for prefix, p in self.promises.aliases.provider_prefixes.items():
            if p not in names:
                raise ValueError(f"promises.aliases.provider_prefixes.{prefix}: {p!r} is not one of the providers")
        if self.promises.keys and self.promises.keys.model and self.promises.keys.model not in model_names:
            raise ValueError(f"promises.keys.model: {self.promises.keys.model!r} is not one of the models")
        return self

    @model_validator(mode="after")
    def _models_of_their_own(self) -> "HarnessConfig":
        """roles.metrics and each roles.concurrency model must be sent to by their own claims alone:
        another claim's requests on the metrics model move the counters those claims read, and on a
        concurrency model take the slots those claims count, so a shared model gives FAILs the
        gateway did not earn. No default, no other role and no other slot may name one of them."""
        uses: list[tuple[str, Optional[str]]] = []
        for kind in ("openai", "anthropic"):
            explicit = getattr(self.defaults, f"{kind}_model")
            # unset, the conformance checks take the first model of that shape (default_model)
            uses.append((f"defaults.{kind}_model" if explicit else
                         f"defaults.{kind}_model (unset: the first {kind}-style model)", self.default_model(kind)))
        uses += [(f"roles.{k}", v) for k, v in self.roles.model_dump().items() if isinstance(v, str)]
        uses += [(f"roles.{k}[{i}]", v) for k in ("breaker", "rate_limit", "concurrency")
                 for i, v in enumerate(getattr(self.roles, k))]
        why = {"roles.metrics": "the metrics claims read its counters, which must move with their requests alone",
               "roles.concurrency": "each concurrency claim holds its model's slots, which no other request may take"}
        for field, value in uses:
            role = field.split("[")[0]
            if role not in why or value is None:
                continue
            other = next((f for f, v in uses if v == value and f != field), None)
            if other is not None:
                raise ValueError(f"{field}: {value!r} is also {other}: {why[role]}; give it a model of its own")
        return self

    # -- conveniences for checks -------------------------------------------------------------
    def provider(self, name: str) -> ProviderCfg:
        return next(p for p in self.providers if p.name == name)

    def model(self, name: str) -> ModelCfg:
        return next(m for m in self.models if m.name == name)

    def default_model(self, kind: str) -> Optional[str]:
        explicit = self.defaults.openai_model if kind == "openai" else self.defaults.anthropic_model
        if explicit:
            return explicit
        family = OPENAI_COMPATIBLE if kind == "openai" else (kind,)
        return next((m.name for m in self.models if self.provider(m.provider).kind in family), None)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out


_M = TypeVar("_M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[_M], what: str) -> _M:
    """A YAML file validated into `model`; any problem is a ConfigError naming the file and field."""
    try:
        return model.model_validate(yaml_strict.load(path.read_text()))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        at, what = yaml_strict.describe(exc)
        raise ConfigError(f"{path}{at}: not valid YAML: {what}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _loc(tuple(p for p in err["loc"] if not str(p).startswith("function-after")))
        raise ConfigError(f"{path}: {where + ': ' if where else ''}{err['msg'].removeprefix('Value error, ')}") from None


def parse(data: Any, source: str) -> HarnessConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must hold a mapping (target, providers, models, ...)")
    try:
        return HarnessConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _loc(tuple(p for p in err["loc"] if not str(p).startswith("function-after")))
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{source}: {where + ': ' if where else ''}{msg}{more}") from None


def load(path: Optional[Path]) -> tuple[HarnessConfig, Path]:
    """The config and the file it came from (the embedded default when path is None)."""
    path = path or EMBEDDED_DEFAULT
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml_strict.load(text)
    except yaml.YAMLError as exc:
        at, what = yaml_strict.describe(exc)
        raise ConfigError(f"{path}{at}: not valid YAML: {what}") from None
    cfg = parse(data, str(path))
    from harness.world.routes import RouteError, Routes
    try:
        Routes(cfg).check()    # every path and header template renders, before anything starts
    except RouteError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return cfg, path


def builtin_targets() -> dict[str, Path]:
    """The targets shipped in harness/targets/, by name (the file's stem): ordinary harness.yaml files."""
    return {p.stem: p for p in sorted(TARGETS.glob("*.yaml"))}


def target_path(name: str) -> Path:
    """The harness.yaml of a built-in target; an unknown name is a ConfigError listing the known ones."""
    found = builtin_targets()
    if name not in found:
        raise ConfigError(f"--target {name}: no such built-in target (known: {', '.join(found)}; "
                          "`harness targets` lists them)")
    return found[name]


def resolve_key(auth: AuthSpec, source: str) -> Optional[str]:
    """The gateway key for this run. Never logged: callers hand it to a Redactor at once."""
    if not auth.takes_key:
        return None
    if auth.key_env:
        value = os.environ.get(auth.key_env)
        if not value:
            raise ConfigError(f"{source}: target.auth.key_env: environment variable {auth.key_env} is not set")
        return value
    if auth.key == "generate":
        return "sk-harness-" + secrets.token_hex(16)
    return auth.key
