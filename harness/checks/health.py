"""The health endpoint."""
from __future__ import annotations

import json

from harness.checks.base import CheckContext, Deviation, Unsupported, Verdict, check, require_answer
from harness.oracles.common import short


@check("health.status")
def status(ctx: CheckContext, auth: bool = True) -> Verdict:
    """200 with a status field; with auth=False, reachable without a key when promised so."""
    promises = ctx.cfg.promises
    if not auth and promises.health_requires_auth:
        raise Unsupported("the gateway promises its health endpoint only to authenticated callers")
    ex = ctx.gateway.request("GET", ctx.path("health"), auth=auth)
    require_answer(ex)
    evidence = {"exchange": ex.evidence()}
    if ex.status != 200:
        raise Deviation(f"health answered HTTP {ex.status}, expected 200", evidence)
    body, field = ex.json(), promises.health_status_field
    if field and not (isinstance(body, dict) and body.get(field) not in (None, "")):
        raise Deviation(f"health body has no {field!r} field: {short(body if body is not None else ex.body.decode('utf-8', 'replace'))}", evidence)
    return Verdict("PASS", f"HTTP 200{f' with {field}={body[field]!r}' if field else ''}", evidence)


@check("health.json_shape")
def json_shape(ctx: CheckContext) -> Verdict:
    """The health route answers a JSON object (Content-Type application/json) holding the status field:
    what a load balancer's or an orchestrator's probe parses."""
    field = ctx.cfg.promises.health_status_field
    if not field:
        raise Unsupported("the gateway promises no status field in its health answer (promises.health_status_field)")
    ex = ctx.gateway.request("GET", ctx.path("health"), auth=ctx.cfg.promises.health_requires_auth)
    require_answer(ex)
    evidence = {"exchange": ex.evidence()}
    problems = []
    if "application/json" not in ex.content_type:
        problems.append(f"Content-Type is {ex.content_type!r}, not application/json")
    body = ex.json()
    if not isinstance(body, dict):
        problems.append(f"the body is not a JSON object: {short(body if body is not None else ex.body.decode('utf-8', 'replace'))}")
    elif not isinstance(body.get(field), str):
        problems.append(f"{field!r} should be a string, got {short(body.get(field))}")
    if problems:
        raise Deviation("; ".join(problems), evidence)
    return Verdict("PASS", f"a JSON object with {field}={body[field]!r}", evidence)


@check("health.liveness")
def liveness(ctx: CheckContext) -> Verdict:
    """The liveness route answers 200 without a key, at once (within 2 s)."""
    path = ctx.cfg.promises.health.liveness_path
    if not path:
        raise Unsupported("the gateway promises no liveness route (promises.health.liveness_path)")
    ex = ctx.gateway.request("GET", path, auth=False, deadline_s=10)
    require_answer(ex)
    evidence = {"exchange": ex.evidence()}
    if ex.status != 200:
        raise Deviation(f"liveness answered HTTP {ex.status} to a caller without a key", evidence)
    if ex.elapsed_s > 2:
        raise Deviation(f"liveness took {ex.elapsed_s:.1f}s", evidence)
    return Verdict("PASS", f"HTTP 200 without a key in {ex.elapsed_s * 1000:.0f} ms", evidence)


@check("health.deployments_degraded")
def deployments_degraded(ctx: CheckContext) -> Verdict:
    """With a provider down (it refuses connections), the per-deployment health names it unhealthy
    and names no deployment of a live provider unhealthy."""
    h = ctx.cfg.promises.health
    if not h.deployments_path:
        raise Unsupported("the gateway promises no per-deployment health (promises.health.deployments_path)")
    down = [p for p in ctx.cfg.providers if p.refuses_connections]
    if not down:
        raise Unsupported("no provider in the config is down on purpose (providers[].refuses_connections)")
    ex = ctx.gateway.request("GET", h.deployments_path, auth=h.deployments_auth, deadline_s=120)
    require_answer(ex)
    evidence = {"exchange": ex.evidence(limit=6000)}
    body = ex.json()
    if ex.status != 200 or not isinstance(body, dict):
        raise Deviation(f"the deployments' health answered HTTP {ex.status}, not a JSON object", evidence)
    unhealthy, healthy = body.get(h.unhealthy_field), body.get(h.healthy_field)
    if not isinstance(unhealthy, list) or not isinstance(healthy, list):
        raise Deviation(f"no {h.unhealthy_field!r} and {h.healthy_field!r} lists in the answer", evidence)
    urls = {p.name: ctx.providers[p.name].url.split("//")[-1] for p in ctx.cfg.providers}
    said_bad = " ".join(json.dumps(x) for x in unhealthy)
    problems = [f"provider {p.name} ({urls[p.name]}) is down but not named unhealthy" for p in down
                if urls[p.name] not in said_bad]
    problems += [f"provider {p.name} ({urls[p.name]}) is up but named unhealthy" for p in ctx.cfg.providers
                 if not p.refuses_connections and urls[p.name] in said_bad]
    if problems:
        raise Deviation("; ".join(problems), evidence)
    return Verdict("PASS", f"{', '.join(p.name for p in down)} named unhealthy, {len(healthy)} deployment(s) healthy",
                   evidence)
