"""harness.yaml: what gateway to test, how to reach or start it, and what it promises.

A new gateway is a new harness.yaml, never new code. Errors name the field on one line; the CLI
turns `ConfigError` into exit code 2 without a traceback.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EMBEDDED_DEFAULT = Path(__file__).parent / "targets" / "litellm.yaml"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$"
PROTOCOLS = ("openai_chat", "openai_responses", "anthropic_messages")


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
    ready_timeout_s: float = Field(120, gt=0, le=1800)
    stop_timeout_s: float = Field(10, gt=0, le=300)


class AuthSpec(_Strict):
    header: str = "Authorization"
    scheme: Optional[str] = "Bearer"
    # Where the key comes from: "generate" (a fresh random key per run, handed to the config
    # template), the name of an environment variable, or, discouraged, a literal.
    key: Optional[str] = None
    key_env: Optional[str] = None

    @model_validator(mode="after")
    def _one_source(self) -> "AuthSpec":
        if self.key and self.key_env:
            raise ValueError("give either key or key_env, not both")
        return self


class Paths(_Strict):
    chat: str = "/v1/chat/completions"
    responses: str = "/v1/responses"
    messages: str = "/v1/messages"
    models: str = "/v1/models"
    health: str = "/health"


class Target(_Strict):
    name: str = Field(pattern=NAME)
    url: Optional[str] = None          # a gateway that is already running
    start: Optional[StartSpec] = None  # or one the harness starts and stops itself
    auth: AuthSpec = AuthSpec()
    paths: Paths = Paths()
    protocols: list[Literal["openai_chat", "openai_responses", "anthropic_messages"]] = ["openai_chat"]

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
    kind: Literal["openai", "anthropic"]
    port: int = Field(0, ge=0, le=65535)   # 0: a free port; fix it when an external gateway points here
    models: list[str] = []


class ModelCfg(_Strict):
    name: str = Field(min_length=1)
    provider: str
    upstream_model: Optional[str] = None   # what the provider sees; default: the name
    headers: dict[str, str] = {}           # extra headers the client must send for this model

    @property
    def upstream(self) -> str:
        return self.upstream_model or self.name


class Breaker(_Strict):
    allowed_fails: int = Field(ge=1)
    cooldown_s: float = Field(gt=0)


class RateLimit(_Strict):
    model: Optional[str] = None
    rpm: int = Field(ge=1)
    window_s: float = Field(60, gt=0)
    headers: list[str] = []


class Promises(_Strict):
    """What the gateway says it does. Checks read their numbers from here, never from code."""
    fallbacks: dict[str, list[str]] = {}
    retries: Optional[int] = Field(None, ge=0)
    request_timeout_s: Optional[float] = Field(None, gt=0)
    breaker: Optional[Breaker] = None
    rate_limits: list[RateLimit] = []
    cache_ttl_s: Optional[float] = Field(None, gt=0)
    idempotency: bool = False
    health_requires_auth: bool = False
    health_status_field: Optional[str] = "status"


class Deadlines(_Strict):
    connect_s: float = Field(5, gt=0, le=300)
    request_s: float = Field(30, gt=0, le=3600)   # a whole plain exchange
    stream_s: float = Field(60, gt=0, le=3600)    # a whole stream
    read_s: float = Field(20, gt=0, le=3600)      # silence between two reads


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
    claims: list[str] = []    # claim ids or id prefixes to run; empty: all

    @model_validator(mode="after")
    def _references(self) -> "HarnessConfig":
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError("providers: names must be unique")
        for i, m in enumerate(self.models):
            if m.provider not in names:
                raise ValueError(f"models[{i}].provider: {m.provider!r} is not one of the providers ({', '.join(names)})")
        model_names = [m.name for m in self.models]
        for field, value in (("defaults.openai_model", self.defaults.openai_model),
                             ("defaults.anthropic_model", self.defaults.anthropic_model)):
            if value is not None and value not in model_names:
                raise ValueError(f"{field}: {value!r} is not one of the models")
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
        return next((m.name for m in self.models if self.provider(m.provider).kind == kind), None)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out


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
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse(data, str(path)), path


def resolve_key(auth: AuthSpec, source: str) -> Optional[str]:
    """The gateway key for this run. Never logged: callers hand it to a Redactor at once."""
    if auth.key_env:
        value = os.environ.get(auth.key_env)
        if not value:
            raise ConfigError(f"{source}: target.auth.key_env: environment variable {auth.key_env} is not set")
        return value
    if auth.key == "generate":
        return "sk-harness-" + secrets.token_hex(16)
    return auth.key
