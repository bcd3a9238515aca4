"""What the provider saw of a healthy request: one attempt, the mapped model, no gateway key."""
from __future__ import annotations

from harness.checks.base import CheckContext, Unsupported, Verdict, check, judge, require_2xx
from harness.secrets import fingerprint


def _one(ctx: CheckContext):
    model, tag = ctx.model("openai"), ctx.tag()
    ex = ctx.chat(model, tag)
    entries = ctx.journal(model, tag)
    require_2xx(ex)
    return model, ex, entries


@check("upstream.single_attempt")
def single_attempt(ctx: CheckContext) -> Verdict:
    """A healthy provider gets exactly one request per client request (no hidden retries or fan-out)."""
    model, ex, entries = _one(ctx)
    return judge([] if len(entries) == 1 else [f"the provider got {len(entries)} requests for one client request"],
                 {"exchange": ex.evidence(), "journal": entries}, "exactly one upstream request")


@check("upstream.model_mapped")
def model_mapped(ctx: CheckContext) -> Verdict:
    """The provider is asked for the upstream model the gateway maps the alias to."""
    model, ex, entries = _one(ctx)
    want = ctx.cfg.model(model).upstream
    got = [e.get("model") for e in entries]
    return judge([] if got == [want] else [f"the provider was asked for {got}, expected [{want!r}]"],
                 {"exchange": ex.evidence(), "journal": entries}, f"alias {model!r} reached the provider as {want!r}")


@check("upstream.client_key_not_forwarded")
def client_key_not_forwarded(ctx: CheckContext) -> Verdict:
    """The caller's gateway key must never reach a provider (providers get their own credentials)."""
    if not ctx.gateway_key:
        raise Unsupported("the gateway takes no key (target.auth)")
    model, ex, entries = _one(ctx)
    mark = "#" + fingerprint(ctx.gateway_key)
    leaks = sorted({k for e in entries for k, v in e["headers"].items() if mark in v})
    return judge([f"the gateway key reached the provider in header(s) {leaks}"] if leaks else [],
                 {"exchange": ex.evidence(), "upstream_headers": [sorted(e["headers"]) for e in entries]},
                 "the provider never saw the gateway key")
