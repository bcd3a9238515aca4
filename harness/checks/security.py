"""Security a caller can probe: no provider key and no master key in anything the gateway sends
back (bodies, error bodies, headers, streamed events); no stack trace in an error; an Origin header
does not downgrade auth; oversized and deeply nested bodies refused cleanly; the websocket route
refuses a missing or wrong key.

Provider keys are never known to the harness: the mock providers journal a fingerprint of each
credential they were sent, and every key-like token of every answer is fingerprinted and compared
(a key is a run of letters, digits, '-' and '_', as every provider's keys are)."""
from __future__ import annotations

import json
import re
import time
from typing import Any, Literal

from harness.checks.base import CheckContext, Deviation, Unsupported, Verdict, check, judge, require_answer
from harness.checks.failover import trail
from harness.client.http import Exchange
from harness.secrets import SECRET_HEADERS, fingerprint

TOKEN = re.compile(r"[A-Za-z0-9_\-]{8,}")
FP = re.compile(r"#([0-9a-f]{8})$")
INTERNALS = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+|"
                       r"\bat [\w.$]+\([\w]+\.(?:java|kt):\d+\)|goroutine \d+ \[|panic: |node:internal|"
                       r"\s+at [\w.<>]+ \(/[^)]+\.js:\d+:\d+\)")
ORIGIN = "http://localhost:3000"   # a browser page's origin, as a gateway's UI or a dev server sends it


def provider_fingerprints(ctx: CheckContext) -> set[str]:
    """Fingerprints of the credentials the gateway sent the providers (their journals, recent entries)."""
    out = set()
    for prov in ctx.providers.values():
        for e in prov.journal(last=200):
            for k, v in (e.get("headers") or {}).items():
                if k in SECRET_HEADERS and (m := FP.search(str(v))):
                    out.add(m.group(1))
    return out


def _texts(ex: Exchange) -> list[tuple[str, str]]:
    out = [(f"header {k}", f"{v}") for k, v in ex.headers.items()]
    out.append(("body", ex.body.decode("utf-8", "replace")))
    return out


def leaks(ctx: CheckContext, exchanges: dict[str, Exchange]) -> list[str]:
    fps = provider_fingerprints(ctx)
    found = []
    for what, ex in exchanges.items():
        for where, text in _texts(ex):
            if ctx.gateway_key and ctx.gateway_key in text:
                found.append(f"{what}: the master key in the {where}")
            for tok in set(TOKEN.findall(text)):
                if fingerprint(tok) in fps:
                    found.append(f"{what}: a provider key (#{fingerprint(tok)}) in the {where}")
    return found


def _error_exchanges(ctx: CheckContext, situation: str) -> dict[str, Exchange]:
    out: dict[str, Exchange] = {}
    if situation == "provider_errors":
        # A model set aside for failures: scripted errors on a model other claims need healthy would
        # count towards its breaker (a gateway that cools it down sends their traffic elsewhere).
        model = ctx.cfg.roles.no_fallback or ctx.cfg.roles.retry
        if not model:
            raise Unsupported("no model set aside for provider errors (roles.no_fallback or roles.retry)")
        ctx._use(model)
        for status in (400, 401, 500):
            tag = ctx.tag()
            ctx.provider_of(model).script(tag=tag, status=status, body={"error": {
                "message": f"Incorrect API key provided: sk-prov******{status}" if status == 401 else f"upstream said {status}",
                "type": "invalid_request_error" if status < 500 else "server_error", "code": None}})
            out[f"a provider {status}"] = ctx.chat(model, tag)
        tag = ctx.tag()
        ctx.provider_of(model).script(tag=tag, status=401, body={"error": {"message": "bad key", "type": "auth"}})
        out["a provider 401, streamed"] = ctx.chat(model, tag, stream=True)
    else:
        model = ctx.model("openai")
        path = ctx.path("chat", model)
        out["an unknown model"] = ctx.gateway.request("POST", path, {"model": "no-such-model-harness", "messages": [
            {"role": "user", "content": "hi"}]})
        out["a body that is not JSON"] = ctx.gateway.request("POST", path, raw=b'{"model": ')
        out["no messages"] = ctx.gateway.request("POST", path, {"model": model})
        if ctx.cfg.target.auth.takes_key:
            scheme = ctx.cfg.target.auth.scheme
            wrong = f"{scheme} sk-wrong-harness-key-0000" if scheme else "sk-wrong-harness-key-0000"
            out["a wrong key"] = ctx.gateway.request("POST", path, {"model": model, "messages": [
                {"role": "user", "content": "hi"}]}, headers={ctx.cfg.target.auth.header or "Authorization": wrong}, auth=False)
            out["no key"] = ctx.gateway.request("POST", path, {"model": model, "messages": [
                {"role": "user", "content": "hi"}]}, auth=False)
    return out


@check("security.no_secrets")
def no_secrets(ctx: CheckContext, situation: Literal["healthy", "provider_errors", "gateway_errors"]) -> Verdict:
    """No provider key and no master key anywhere in what comes back (headers, bodies, events)."""
    if situation == "healthy":
        model = ctx.model("openai")
        exs = {"a plain answer": ctx.chat(model, ctx.tag()), "a stream": ctx.chat(model, ctx.tag(), stream=True)}
        if "anthropic_messages" in ctx.cfg.target.protocols and ctx.cfg.default_model("anthropic"):
            exs["a Messages answer"] = ctx.messages(ctx.model("anthropic"), ctx.tag())
    else:
        exs = _error_exchanges(ctx, situation)
    if not provider_fingerprints(ctx) and not ctx.gateway_key:
        raise Unsupported("no credential to look for: the gateway sends the providers none and takes no key")
    found = leaks(ctx, exs)
    evidence = {what: {"status": ex.status, "error": ex.error} for what, ex in exs.items()}
    return judge(found, {"exchanges": evidence}, f"no key in {len(exs)} answer(s): {', '.join(exs)}")


@check("security.no_internals")
def no_internals(ctx: CheckContext) -> Verdict:
    """No stack trace or source path in an error, the gateway's own or a provider's relayed."""
    exs = _error_exchanges(ctx, "gateway_errors")
    try:
        exs.update(_error_exchanges(ctx, "provider_errors"))
    except Unsupported:
        pass   # no model to fail on purpose: the gateway's own errors are judged alone
    found = [f"{what}: {m.group(0)!r} in the body" for what, ex in exs.items()
             for m in [INTERNALS.search(ex.body.decode("utf-8", "replace"))] if m]
    return judge(found, {"exchanges": {w: ex.evidence(limit=600) for w, ex in exs.items()}},
                 f"no stack trace in {len(exs)} error answer(s)")


@check("security.origin_no_downgrade")
def origin_no_downgrade(ctx: CheckContext, case: Literal["missing", "wrong"]) -> Verdict:
    """The same unauthenticated request with a browser's Origin header is refused exactly as without it,
    and never reaches a provider."""
    ctx.require_key(f"refusing a {case} key")
    model = ctx.model("openai")
    auth = ctx.cfg.target.auth
    headers: dict[str, str] = {}
    if case == "wrong":
        headers[auth.header or "Authorization"] = f"{auth.scheme} sk-wrong-harness-key-0000" if auth.scheme else "sk-wrong-harness-key-0000"
    got, reached = {}, []
    for origin in (False, True):
        tag = ctx.tag()
        h = {**ctx.model_headers(model), **headers, **({"Origin": ORIGIN} if origin else {})}
        ex = ctx.gateway.request("POST", ctx.path("chat", model), {"model": model, "messages": [
            {"role": "user", "content": f"Say something. [h:{tag}]"}]}, headers=h, auth=False)
        require_answer(ex)
        got[origin] = ex
        reached += [e for p in ctx.providers.values() for e in p.journal(tag=tag)] if origin else []
    evidence = {"without_origin": got[False].evidence(), "with_origin": got[True].evidence(), "reached": trail(reached)}
    violations = []
    if got[True].status is not None and got[True].status < 400:
        violations.append(f"with Origin: {ORIGIN} a {case} key got HTTP {got[True].status}")
    elif got[True].status != got[False].status:
        violations.append(f"with Origin the {case} key got HTTP {got[True].status}, without it {got[False].status}")
    if reached:
        violations.append(f"with Origin the request reached a provider: {trail(reached)}")
    return judge(violations, evidence, f"with or without Origin, HTTP {got[True].status}, no provider asked")


def _refused_body(ctx: CheckContext, raw: bytes, tag: str, what: str, bound_s: float = 15) -> Verdict:
    t0 = time.time()
    ex = ctx.gateway.request("POST", ctx.path("chat", ctx.model("openai")), raw=raw, deadline_s=bound_s + 15)
    reached = [e for p in ctx.providers.values() for e in p.journal(tag=tag, since_t=t0 - 1)]
    evidence = {"exchange": ex.evidence(limit=600), "reached": trail(reached), "bytes": len(raw)}
    violations = []
    if ex.error:
        violations.append(f"{what}: no clean answer ({ex.error})")
    elif ex.status is None or not 400 <= ex.status < 500:
        violations.append(f"{what} got HTTP {ex.status}, expected a 4xx refusal")
    if ex.elapsed_s > bound_s:
        violations.append(f"the refusal took {ex.elapsed_s:.1f}s")
    if reached:
        violations.append(f"{what} reached a provider: {trail(reached)}")
    return judge(violations, evidence, f"{what} refused with HTTP {ex.status} in {ex.elapsed_s:.1f}s, no provider asked")


@check("security.oversized_body")
def oversized_body(ctx: CheckContext) -> Verdict:
    limit = ctx.cfg.promises.max_body_bytes
    if not limit:
        raise Unsupported("the gateway promises no request size limit (promises.max_body_bytes)")
    model, tag = ctx.model("openai"), ctx.tag()
    filler = "x" * (limit + 256 * 1024)
    raw = json.dumps({"model": model, "messages": [{"role": "user", "content": f"{filler} [h:{tag}]"}]}).encode()
    return _refused_body(ctx, raw, tag, f"a {len(raw) // 1024} KiB body over the {limit // 1024} KiB limit")


@check("security.nested_json")
def nested_json(ctx: CheckContext) -> Verdict:
    """A valid JSON body nested 20,000 deep (past Python's recursion limit and Go's 10,000) is refused
    with a 4xx, not a 5xx or a hang, and never reaches a provider."""
    model, tag = ctx.model("openai"), ctx.tag()
    depth = 20_000
    raw = (json.dumps({"model": model, "messages": [{"role": "user", "content": f"Say something. [h:{tag}]"}]})[:-1]
           + ', "harness_nested": ' + "[" * depth + "]" * depth + "}").encode()
    return _refused_body(ctx, raw, tag, f"a body nested {depth} deep")


@check("security.websocket_refused")
def websocket_refused(ctx: CheckContext, case: Literal["missing", "wrong"]) -> Verdict:
    """The realtime websocket route refuses a missing or wrong key: at the handshake (4xx) or by
    closing before a session; no provider is asked."""
    from harness.client.ws import Session, WSError

    if "openai_realtime" not in ctx.cfg.target.protocols:
        raise Unsupported("the gateway exposes no realtime websocket route (target.protocols: openai_realtime)")
    ctx.require_key(f"refusing a {case} key on the websocket route")
    model = ctx.model("openai")
    url = ctx.gateway.base_url.replace("http://", "ws://", 1) + ctx.path("realtime", model) + f"?model={model}"
    auth = ctx.cfg.target.auth
    headers = {**ctx.gateway.base_headers, **ctx.model_headers(model)}
    if case == "wrong":
        headers[auth.header or "Authorization"] = f"{auth.scheme} sk-wrong-harness-key-0000" if auth.scheme else "sk-wrong-harness-key-0000"
    tag = ctx.tag()
    evidence: dict[str, Any] = {"url": url.split("?")[0], "case": case}
    try:
        session = Session(url, headers)
    except WSError as exc:
        evidence["refusal"] = str(exc)
        if re.search(r"HTTP 4\d\d", str(exc)):
            return Verdict("PASS", f"the websocket was refused at the handshake: {exc}", evidence)
        raise Deviation(f"the websocket did not open, but not with a 4xx refusal: {exc}", evidence) from None
    try:
        why = session.recv_until(lambda e: e.get("type") == "session.created", 5)
        if why is None:
            session.send({"type": "response.create",
                          "response": {"modalities": ["text"], "instructions": f"Say something. [h:{tag}]"}})
            session.recv_until(lambda e: e.get("type") in ("response.done", "error"), 5)
        evidence["events"] = [e.get("type") for e in session.events]
    finally:
        session.close()
    reached = [e for p in ctx.providers.values() for e in p.journal(tag=tag)]
    if reached or any(e.get("type") == "session.created" for e in session.events):
        raise Deviation(f"a websocket with a {case} key got a session"
                        + (f" and reached a provider: {trail(reached)}" if reached else ""), evidence)
    return Verdict("PASS", f"the websocket with a {case} key was closed before any session ({why})", evidence)
