"""matrices/smoke/*.yaml: providers with their models and prices, aliases and fallback chains,
the protocols and streaming modes to cross them with; expanded into rows (one per route the
client can name) and into the providers and models of a harness config for the gateway."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness import paths
from harness.config import NAME, NotOfferedRoute, load_yaml_model
from harness.smoke.cases import CASES as CASE_TABLE

MATRICES = paths.MATRICES / "smoke"
PROTOCOLS = ("openai_chat", "openai_responses", "anthropic_messages")
# What a cell sends besides route x protocol x streaming (text, tools, parallel_tools): cases.py.
CASES = tuple(CASE_TABLE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Offer(_Strict):
    name: str = Field(min_length=1)              # the provider's own model name
    input_per_mtok: float = Field(ge=0)          # USD per million input tokens
    output_per_mtok: float = Field(ge=0)         # USD per million output tokens


class SmokeProvider(_Strict):
    name: str = Field(pattern=NAME)
    kind: Literal["openai", "anthropic", "gemini", "ollama"]
    local: bool = False                          # a local server (llama.cpp, Ollama): no API key
    port: int = Field(0, ge=0, le=65535)         # fix it when an external gateway is configured to reach it
    models: list[Offer] = Field(min_length=1)


class NotOffered(NotOfferedRoute):
    """A route of this matrix the gateway does not offer on purpose (by the matrix's provider names)."""


class Matrix(_Strict):
    name: str
    description: str = ""
    protocols: list[Literal["openai_chat", "openai_responses", "anthropic_messages"]] = list(PROTOCOLS)
    streaming: list[bool] = [False, True]
    select: Literal["all", "cheapest"] = "all"   # rows: every model, or the cheapest per provider
    typical_request: dict[Literal["input_tokens", "output_tokens"], int] = {"input_tokens": 1000, "output_tokens": 250}
    providers: list[SmokeProvider] = Field(min_length=1)
    aliases: dict[str, str] = {}                 # plain name -> provider/model
    fallbacks: dict[str, list[str]] = {}         # provider/model or alias -> chain of them
    not_offered: list[NotOffered] = []
    # Routes that also get tool-call cells (one tool; two parallel calls), in every protocol and mode:
    # `cheapest` each provider's cheapest model (aliases left out: they reach the same provider),
    # `all`, `none`, or a list of route names.
    tools: Union[Literal["none", "cheapest", "all"], list[str]] = "cheapest"

    @model_validator(mode="after")
    def _references(self) -> "Matrix":
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError("providers: names must be unique")
        qualified = {f"{p.name}/{m.name}" for p in self.providers for m in p.models}
        for alias, target in self.aliases.items():
            if "/" in alias:
                raise ValueError(f"aliases.{alias}: a plain alias has no provider prefix")
            if target not in qualified:
                raise ValueError(f"aliases.{alias}: {target!r} is not a provider/model of the matrix")
        known = qualified | set(self.aliases)
        for head, chain in self.fallbacks.items():
            for name in [head, *chain]:
                if name not in known:
                    raise ValueError(f"fallbacks.{head}: {name!r} is neither a provider/model nor an alias")
        for i, n in enumerate(self.not_offered):
            if n.provider and n.provider not in names:
                raise ValueError(f"not_offered[{i}].provider: {n.provider!r} is not one of the providers")
        for name in self.tools if isinstance(self.tools, list) else []:
            if name not in known:
                raise ValueError(f"tools: {name!r} is neither a provider/model nor an alias")
        return self

    def cost(self, offer: Offer) -> float:
        """USD for the typical request: what 'cheapest' compares."""
        t = self.typical_request
        return (offer.input_per_mtok * t.get("input_tokens", 0) + offer.output_per_mtok * t.get("output_tokens", 0)) / 1e6

    def cheapest(self, provider: SmokeProvider) -> Offer:
        return min(provider.models, key=lambda o: (self.cost(o), o.name))

    def rows(self) -> list["Row"]:
        out = []
        for p in self.providers:
            cheap = self.cheapest(p)
            for o in p.models:
                if self.select == "cheapest" and o is not cheap:
                    continue
                out.append(Row(f"{p.name}/{o.name}", p.name, p.kind, o.name, self.cost(o), o is cheap))
        by_name = {f"{p.name}/{o.name}": (p, o) for p in self.providers for o in p.models}
        for alias, target in self.aliases.items():
            p, o = by_name[target]
            out.append(Row(alias, p.name, p.kind, o.name, self.cost(o), o is self.cheapest(p), alias_of=target))
        return out

    def cases(self, row: "Row") -> list[str]:
        """What the row's cells send: words always, tool calls on the routes `tools:` names."""
        t = self.tools
        with_tools = (t == "all" or (t == "cheapest" and row.cheapest and row.alias_of is None)
                      or (isinstance(t, list) and row.name in t))
        return [name for name, case in CASE_TABLE.items() if with_tools or not case.tools]

    def cells(self) -> list[tuple["Row", str, bool, str]]:
        """Every cell, (row, protocol, stream, case): the text cells first, in the order they always
        had, then the tool cells; the one place that crosses the dimensions."""
        rows = self.rows()
        return [(r, p, s, c) for c in CASES for r in rows if c in self.cases(r)
                for p in self.protocols for s in self.streaming]

    def not_offered_why(self, provider: str, protocol: str, stream: bool, case: str = "text") -> Optional[str]:
        for n in self.not_offered:
            if (n.provider in (None, provider) and n.protocol in (None, protocol) and n.stream in (None, stream)
                    and n.case in (None, case)):
                return n.why
        return None

    def harness_parts(self) -> dict:
        """The providers, models and fallbacks of a harness config serving this matrix: each offer
        as provider/model, each alias as its own gateway model name."""
        providers = [{"name": p.name, "kind": p.kind, "port": p.port, "models": [o.name for o in p.models]}
                     for p in self.providers]
        models = []
        for p in self.providers:
            for o in p.models:
                gw = {"api_key": "none"} if p.local else {}
                models.append({"name": f"{p.name}/{o.name}", "provider": p.name, "upstream_model": o.name, "gateway": gw})
        kind = {p.name: p for p in self.providers}
        for alias, target in self.aliases.items():
            pname, _, oname = target.partition("/")
            models.append({"name": alias, "provider": pname, "upstream_model": oname,
                           "gateway": {"api_key": "none"} if kind[pname].local else {}})
        return {"providers": providers, "models": models, "fallbacks": dict(self.fallbacks)}


# What each mock provider kind serves, for configuring a gateway by hand (`harness smoke --routes`).
UPSTREAM_API = {
    "openai": "POST /v1/chat/completions, /v1/responses (also without /v1)",
    "anthropic": "POST /v1/messages",
    "gemini": "POST /v1beta/models/{model}:generateContent, :streamGenerateContent?alt=sse",
    "ollama": "POST /api/chat (NDJSON stream), GET /api/tags",
}


def route_table(matrix: "Matrix") -> list[dict]:
    """Every route of the matrix and where the gateway must send it: the provider's kind, address
    (a fixed `port:`, else a free port chosen at each run), upstream model and API."""
    kinds = {p.name: p for p in matrix.providers}
    out = []
    for r in matrix.rows():
        p = kinds[r.provider]
        chain = matrix.fallbacks.get(r.name, [])
        out.append({"route": r.name, "provider": p.name, "kind": p.kind,
                    "address": f"127.0.0.1:{p.port}" if p.port else "127.0.0.1:<a free port; set port: to fix it>",
                    "upstream_model": r.upstream, "api": UPSTREAM_API[p.kind], "key": "none" if p.local else "any",
                    "fallbacks": chain, "cheapest": r.cheapest})
    return out


class Row:
    """One route a client can name: provider/model or a plain alias."""

    def __init__(self, name: str, provider: str, kind: str, upstream: str, cost: float, cheapest: bool,
                 alias_of: Optional[str] = None) -> None:
        self.name, self.provider, self.kind, self.upstream = name, provider, kind, upstream
        self.cost, self.cheapest, self.alias_of = cost, cheapest, alias_of

    def to_json(self) -> dict:
        return {"name": self.name, "provider": self.provider, "kind": self.kind, "upstream": self.upstream,
                "cost_usd": round(self.cost, 8), "cheapest": self.cheapest, "alias_of": self.alias_of}


def load_matrix(name_or_path: str) -> Matrix:
    path = Path(name_or_path)
    if not path.exists():
        path = MATRICES / f"{name_or_path}.yaml"
    return load_yaml_model(path, Matrix, "smoke matrix")
