"""Model aliases and how names resolve: each alias reaches its own provider as its upstream model;
an unknown name is refused before any provider is asked; an explicit provider prefix wins over an
alias of the same name; the response names the alias or its upstream model."""
from __future__ import annotations

from typing import Any

from harness.checks.base import CheckContext, Unsupported, Verdict, check, judge, require_2xx
from harness.checks.failover import trail
from harness.oracles import errors as eo
from harness.oracles import openai_stream as os_

UNKNOWN = "no-such-model-harness"


def _servable(ctx: CheckContext) -> list[str]:
    """Aliases a request can be spent on without disturbing a stateful claim (rate-limit windows,
    breakers, the fault proxy, the metrics claims' counters, the concurrency claims' slots), nor spread over several providers
    (routing groups), nor sent to a provider that refuses connections on purpose."""
    r = ctx.cfg.roles
    skip = set(r.rate_limit) | set(r.breaker) | set(r.concurrency) | {r.chaos, r.metrics} | set(ctx.cfg.promises.routing)
    return [m.name for m in ctx.cfg.models if m.name not in skip and ctx.cfg.provider(m.provider).kind == "openai"
            and not ctx.cfg.provider(m.provider).refuses_connections]


def _all_journals(ctx: CheckContext, tag: str) -> list[dict[str, Any]]:
    return sorted((e for p in ctx.providers.values() for e in p.journal(tag=tag)), key=lambda e: e["t_received"])


@check("aliases.reach_upstream")
def reach_upstream(ctx: CheckContext, stream: bool = False) -> Verdict:
    """Every alias (one request each) reaches its own provider, asked for its upstream model; no other
    provider is asked."""
    violations, seen = [], []
    for name in _servable(ctx):
        tag = ctx.tag()
        ex = ctx.chat(name, tag, stream=stream)
        entries = _all_journals(ctx, tag)
        want = (ctx.provider_of(name).name, ctx.cfg.model(name).upstream)
        got = [(e["provider"], e["model"]) for e in entries]
        seen.append({"alias": name, "status": ex.status, "reached": got})
        if ex.error or ex.status != 200:
            violations.append(f"{name}: {ex.error or f'HTTP {ex.status}'}")
        elif got[:1] != [want]:
            violations.append(f"{name} reached {got}, expected {want[1]!r} at {want[0]}")
    return judge(violations, {"aliases": seen}, f"{len(seen)} aliases each reached their provider as their upstream model")


@check("aliases.unknown_refused")
def unknown_refused(ctx: CheckContext, stream: bool = False) -> Verdict:
    """An unknown model is refused with a 4xx and an error object (streamed: before any stream), and no
    provider is asked."""
    tag = ctx.tag()
    body = {"model": UNKNOWN, "messages": [{"role": "user", "content": f"Say something. [h:{tag}]"}]}
    if stream:
        body["stream"] = True
    ex = ctx.gateway.request("POST", ctx.path("chat"), body, stream=stream)
    entries = _all_journals(ctx, tag)
    violations = eo.client_error_status(ex.status, ex.error)
    if ex.status and ex.status >= 400:
        violations += eo.openai_error_object(ex.json())
    if "text/event-stream" in ex.content_type:
        violations.append("the refusal came as an event stream, not as an error")
    if entries:
        violations.append(f"the unknown model still reached a provider: {trail(entries)}")
    return judge(violations, {"exchange": ex.evidence(), "reached": trail(entries)},
                 f"refused with HTTP {ex.status}, no provider asked")


@check("aliases.prefix_wins")
def prefix_wins(ctx: CheckContext) -> Verdict:
    """`prefix/name`, where `name` is also an alias routed elsewhere, goes to the prefix's provider as
    `name`: the explicit provider wins."""
    prefixes = ctx.cfg.promises.aliases.provider_prefixes
    if not prefixes:
        raise Unsupported("the gateway promises no provider prefixes (promises.aliases.provider_prefixes)")
    prefix, provider = sorted(prefixes.items())[0]
    alias = next((m.name for m in ctx.cfg.models if m.provider != provider and m.name in _servable(ctx)), None)
    if alias is None:
        raise Unsupported(f"no alias routed to a provider other than {provider} to shadow")
    tag = ctx.tag()
    name = prefix + alias
    ex = ctx.gateway.request("POST", ctx.path("chat"), {
        "model": name, "messages": [{"role": "user", "content": f"Say something. [h:{tag}]"}]})
    entries = _all_journals(ctx, tag)
    got = [(e["provider"], e["model"]) for e in entries]
    evidence = {"exchange": ex.evidence(), "reached": got, "alias_provider": ctx.cfg.model(alias).provider}
    require_2xx(ex)
    return judge([] if got == [(provider, alias)] else
                 [f"{name!r} reached {got}; the prefix promises {alias!r} at {provider} (the alias {alias!r} "
                  f"lives at {ctx.cfg.model(alias).provider})"],
                 evidence, f"{name!r} went to {provider} as {alias!r}, over the alias of that name")


@check("aliases.response_model")
def response_model(ctx: CheckContext, stream: bool = False) -> Verdict:
    """The response (every chunk of a stream) names the alias requested or its upstream model."""
    model, tag = ctx.model("openai"), ctx.tag()
    ex = ctx.chat(model, tag, stream=stream)
    require_2xx(ex)
    accepted = {model, ctx.cfg.model(model).upstream}
    names = [c.get("model") for c in os_.parse(ex.events).chunks] if stream else [(ex.json() or {}).get("model")]
    wrong = sorted({str(n) for n in names if n not in accepted})
    return judge([f"the response names model(s) {wrong}; expected one of {sorted(accepted)}"] if wrong or not names else [],
                 {"exchange": ex.evidence()}, f"the response names {names[0]!r}")


@check("aliases.anthropic_upstream")
def anthropic_upstream(ctx: CheckContext) -> Verdict:
    """An alias on the Messages route reaches its Anthropic provider as its upstream model."""
    if "anthropic_messages" not in ctx.cfg.target.protocols:
        raise Unsupported("the gateway does not expose the Anthropic Messages API (target.protocols)")
    model, tag = ctx.model("anthropic"), ctx.tag()
    ex = ctx.messages(model, tag)
    require_2xx(ex)
    got = [e["model"] for e in ctx.journal(model, tag)]
    want = ctx.cfg.model(model).upstream
    return judge([] if got == [want] else [f"the provider was asked for {got}, expected [{want!r}]"],
                 {"exchange": ex.evidence()}, f"{model!r} reached the provider as {want!r}")
