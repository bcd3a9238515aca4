"""The health endpoint."""
from __future__ import annotations

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
