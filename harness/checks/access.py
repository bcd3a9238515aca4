"""Auth, rate limits and idempotency: what the gateway refuses, and that refusals never cost a provider call."""
from __future__ import annotations

import os
import time
from typing import Any, Literal, Optional

from harness.checks.base import CheckContext, Deviation, Unsupported, Verdict, check, judge, require_2xx, require_answer
from harness.checks.failover import trail
from harness.oracles import openai_chat as oc


def _with_key(ctx: CheckContext, tag: str, value: Optional[str], header: Optional[str] = None, model: Optional[str] = None):
    model = model or ctx.model("openai")
    auth = ctx.cfg.target.auth
    headers: dict[str, str] = {}
    if value is not None:
        headers[header or auth.header] = value
    body = {"model": model, "messages": [{"role": "user", "content": f"Say something. [h:{tag}]"}]}
    return ctx.gateway.request("POST", ctx.path("chat", model), body, headers={**ctx.model_headers(model), **headers},
                               auth=False)


def _all_providers(ctx: CheckContext, tag: str) -> list[dict[str, Any]]:
    return sorted((e for p in ctx.providers.values() for e in p.journal(tag=tag)), key=lambda e: e["t_received"])


def _refused(ctx: CheckContext, ex, tag: str, what: str) -> Verdict:
    require_answer(ex)
    statuses = ctx.cfg.promises.auth.statuses
    leaked = _all_providers(ctx, tag)
    violations = []
    if ex.status not in statuses:
        violations.append(f"{what} got HTTP {ex.status}, expected one of {statuses}")
    if leaked:
        violations.append(f"{what} still reached a provider: {trail(leaked)}")
    return judge(violations, {"exchange": ex.evidence()}, f"{what} refused with HTTP {ex.status}, no provider called")


@check("auth.refused")
def refused(ctx: CheckContext, case: Literal["missing", "wrong", "malformed", "revoked", "expired"]) -> Verdict:
    ctx.require_key(f"refusing a {case} key")
    a = ctx.cfg.promises.auth
    scheme = ctx.cfg.target.auth.scheme
    tag = ctx.tag()
    if case == "missing":
        if not a.refuses_missing_key:
            raise Unsupported("the gateway does not promise to refuse requests without a key")
        return _refused(ctx, _with_key(ctx, tag, None), tag, "a request without a key")
    if case == "wrong":
        if not a.refuses_wrong_key:
            raise Unsupported("the gateway does not promise to refuse wrong keys")
        value = f"{scheme} sk-wrong-harness-key-0000" if scheme else "sk-wrong-harness-key-0000"
        return _refused(ctx, _with_key(ctx, tag, value), tag, "a wrong key")
    if case == "malformed":
        return _refused(ctx, _with_key(ctx, tag, scheme or "Bearer"), tag, "an auth header without a key")
    env = {"revoked": a.revoked_key_env, "expired": a.expired_key_env}[case]
    if not env or not os.environ.get(env):
        raise Unsupported(f"no {case} key to try (promises.auth.{case}_key_env)")
    key = os.environ[env]
    return _refused(ctx, _with_key(ctx, tag, f"{scheme} {key}" if scheme else key), tag, f"a {case} key")


MAX_WAIT_S = 75   # the longest window the reset claim waits out


def _rl(ctx: CheckContext, slot: int):
    rl = ctx.cfg.promises.rate_limit
    if rl is None:
        raise Unsupported("the gateway promises no rate limit (promises.rate_limit)")
    return rl, ctx.slot("rate_limit", slot)


def _burst(ctx: CheckContext, model: str, tag: str, n: int, start: int = 0) -> list:
    # Distinct prompts: a response cache must not absorb requests meant to count against the limit.
    return [ctx.chat(model, tag, prompt=f"Count me, request {start + i}.") for i in range(n)]


@check("ratelimit.enforced")
def enforced(ctx: CheckContext, aspect: Literal["under", "over", "headers", "not_forwarded", "reset"], slot: int) -> Verdict:
    """aspect: under (all pass), over (429), headers (the promised ones), not_forwarded, reset.
    Each claim has a model of its own, so each starts with a fresh window."""
    rl, model = _rl(ctx, slot)
    if aspect == "headers" and not rl.headers:
        raise Unsupported("the gateway promises no header on its rate-limit refusal (promises.rate_limit.headers)")
    if aspect == "reset" and rl.window_s > MAX_WAIT_S:
        raise Unsupported(f"a {rl.window_s}s window is too long to wait out; shorten it for tests")
    tag = ctx.tag()
    t0 = time.monotonic()
    under = _burst(ctx, model, tag, rl.rpm)
    over = _burst(ctx, model, tag, 1, start=rl.rpm)[0]
    in_window = time.monotonic() - t0 < rl.window_s
    evidence = {"under": [e.status for e in under], "over": over.evidence(), "over_headers": over.headers}
    if not in_window:
        raise Unsupported(f"{rl.rpm + 1} requests took longer than the {rl.window_s}s window")
    if aspect == "under":
        bad = [e.status for e in under if e.status != 200]
        return judge([f"requests under the limit were refused: {bad}"] if bad else [], evidence,
                     f"{rl.rpm} requests within the limit all passed")
    if aspect == "over":
        return judge([] if over.status == rl.status else [f"request {rl.rpm + 1} got HTTP {over.status}, expected {rl.status}"],
                     evidence, f"request {rl.rpm + 1} was refused with {rl.status}")
    if aspect == "headers":
        missing = [h for h in rl.headers if h.lower() not in over.headers]
        if over.status != rl.status:
            raise Deviation(f"no refusal to inspect: request {rl.rpm + 1} got HTTP {over.status}", evidence)
        return judge([f"the {rl.status} lacks header(s) {missing}"] if missing else [], evidence,
                     f"the refusal carries {rl.headers}")
    if aspect == "not_forwarded":
        n = len(ctx.provider_of(model).journal(tag=tag))
        return judge([] if n == rl.rpm else [f"the provider got {n} requests; only {rl.rpm} were allowed"],
                     evidence, "refused requests never reached the provider")
    # reset
    time.sleep(max(0.0, rl.window_s - (time.monotonic() - t0)) + 1.0)
    after = _burst(ctx, model, tag, 1, start=rl.rpm + 1)[0]
    evidence["after_window"] = after.evidence()
    return judge([] if after.status == 200 else [f"after the {rl.window_s}s window the request got HTTP {after.status}"],
                 evidence, f"the limit reset after {rl.window_s}s")


@check("idempotency.same_key")
def same_key(ctx: CheckContext, same: bool) -> Verdict:
    header = ctx.cfg.promises.idempotency_header
    if not header:
        raise Unsupported("the gateway does not promise Idempotency-Key handling (promises.idempotency_header)")
    model, tag = ctx.model("openai"), ctx.tag()
    k1 = f"harness-{tag}-1"
    a = ctx.gateway.request("POST", ctx.path("chat", model), {"model": model, "messages": [
        {"role": "user", "content": f"Once. [h:{tag}]"}]}, headers={**ctx.model_headers(model), header: k1})
    b = ctx.gateway.request("POST", ctx.path("chat", model), {"model": model, "messages": [
        {"role": "user", "content": f"Once. [h:{tag}]"}]},
        headers={**ctx.model_headers(model), header: k1 if same else f"harness-{tag}-2"})
    require_2xx(a)
    require_2xx(b)
    n = len(ctx.provider_of(model).journal(tag=tag))
    evidence = {"first": a.evidence(), "second": b.evidence()}
    if same:
        violations = [] if n == 1 else [f"the same {header} twice reached the provider {n} times"]
        if a.body != b.body:
            violations.append("the replayed answer differs from the first")
        return judge(violations, evidence, "the same key reached the provider once and replayed the same body")
    return judge([] if n == 2 else [f"two different keys reached the provider {n} time(s)"], evidence,
                 "different keys both went through")


def _no_estimate(usage: Any) -> list[str]:
    """Zero tokens for a prompt and an answer that both have text is a placeholder, not an estimate
    (totals that add up are not enough: 0 + 0 = 0)."""
    if isinstance(usage, dict) and not usage.get("prompt_tokens") and not usage.get("completion_tokens"):
        return [f"usage is {usage.get('prompt_tokens')} prompt and {usage.get('completion_tokens')} completion "
                "tokens for a prompt and an answer with text: zeros, not an estimate"]
    return []


@check("usage.when_provider_omits")
def when_provider_omits(ctx: CheckContext, stream: bool = False) -> Verdict:
    """The provider sends no usage. A gateway that promises an estimate reports one that adds up."""
    if not ctx.cfg.promises.usage_estimated_when_missing:
        raise Unsupported("the gateway does not promise a usage estimate when the provider omits usage")
    model, tag = ctx.model("openai"), ctx.tag()
    ctx.provider_of(model).script(tag=tag, omit_usage=True)
    if stream:
        from harness.oracles import openai_stream as os_
        ex = ctx.chat(model, tag, stream=True, stream_options={"include_usage": True})
        require_2xx(ex)
        s = os_.parse(ex.events)
        usages = [c["usage"] for c in s.chunks if c.get("usage") is not None]
        # Only presence and totals: where the usage chunk sits is CM-10.2.7's business.
        violations = ([] if len(usages) == 1 else [f"expected one usage in the stream, found {len(usages)}"])
        if usages:
            violations += oc.usage_totals({"usage": usages[-1]}) + _no_estimate(usages[-1])
        return judge(violations, {"exchange": ex.evidence()}, "an estimated usage chunk that adds up")
    ex = ctx.chat(model, tag)
    require_2xx(ex)
    body = ex.json()
    return judge(oc.usage_totals(body) + _no_estimate((body or {}).get("usage") if isinstance(body, dict) else None),
                 {"exchange": ex.evidence()}, "an estimated usage that adds up")
