"""What the providers' journals say of a check's own traffic, once the check has its verdict.

A verdict is only as good as the world it was reached in. Three things the journals show change
what a verdict means, whatever the check concluded:
- the gateway called a route the mock does not serve (it answered a distinct 404, journaled as
  unserved), with this check's request or at any time at a provider of the check's models: the
  claim is ERROR "not judged", naming the route; a FAIL there is the harness's gap, and a PASS may
  rest on the 404 (a fallback taken for the wrong reason, a provider cooled down since);
- the claim needs what the route the gateway used cannot do (tool calls through Ollama's
  /api/generate): UNSUPPORTED with that reason, not FAIL;
- a request never reached its model's own provider: the reason says who answered it (a fallback,
  another provider, or nobody), with the journal entries as evidence.
"""
from __future__ import annotations

from typing import Any

import httpx

from harness.checks.base import CheckContext, Verdict
from harness.results.record import Status

JUDGED = {Status.PASS, Status.FAIL, Status.SAFE, Status.PARTIAL, Status.ERROR}
CAN_SAY = {"tools": "tool calls", "parallel_tools": "parallel tool calls", "json": "a JSON mode"}
WINDOW_SLACK_S = 0.5   # a request this long before the check began may still be its own
LAST = 20              # unserved requests shown per provider (the evidence, not a census)


def review(ctx: CheckContext, verdict: Verdict) -> Verdict:
    if Status(verdict.status) not in JUDGED:
        return verdict            # UNSUPPORTED, MISSING: nothing was judged that the journal could undo
    try:
        unserved = unserved_calls(ctx)
        if unserved:
            return _not_judged(ctx, verdict, unserved)
        if Status(verdict.status) == Status.PASS:
            return verdict
        lacking = lacking_routes(ctx)
        if lacking:
            return _unsupported(ctx, verdict, lacking)
        return _annotated(ctx, verdict)
    except (httpx.HTTPError, ValueError) as exc:   # a journal that cannot be read leaves the verdict as it was
        verdict.evidence["journal_review"] = f"the providers' journals could not be read: {type(exc).__name__}: {exc}"
        return verdict


def _compact(provider: str, e: dict[str, Any]) -> dict[str, Any]:
    return {"provider": provider, "method": e.get("method"), "path": e.get("path"), "model": e.get("model"),
            "status": e.get("status"), "served": e.get("served", True), "tag": e.get("tag"),
            "route_can": e.get("route_can"), "t_received": e.get("t_received")}


def _providers_of(ctx: CheckContext, models: list[str]) -> set[str]:
    out = set()
    for m in models:
        try:
            out.add(ctx.cfg.model(m).provider)
        except StopIteration:     # a name the config does not know (an unknown-model case): no provider
            pass
    return out


def _kind(ctx: CheckContext, provider: str) -> str:
    return next((p.kind for p in ctx.cfg.providers if p.name == provider), "?")


def _models_at(ctx: CheckContext, provider: str) -> list[str]:
    return [m.name for m in ctx.cfg.models if m.provider == provider]


def unserved_calls(ctx: CheckContext) -> list[tuple[str, dict[str, Any]]]:
    """Requests on routes a mock does not serve that bear on this check: any, at any time of the
    run, at a provider of one of its models (a gateway that got a 404 there may avoid the provider
    since: a cooldown, a fallback taken at once); at other providers, those carrying its tags."""
    mine = _providers_of(ctx, ctx.used_models)
    out = []
    for name, prov in ctx.providers.items():
        if name in mine:
            found = prov.journal(served=False, last=LAST)
        else:
            found = [e for e in prov.journal(served=False, since_t=ctx.started_at - WINDOW_SLACK_S)
                     if e.get("tag") in ctx.used_tags]
        out += [(name, e) for e in found]
    return out


def _not_judged(ctx: CheckContext, verdict: Verdict, unserved: list[tuple[str, dict[str, Any]]]) -> Verdict:
    routes: dict[tuple[str, str, str], None] = {}
    for name, e in unserved:
        routes[(e["method"], e["path"], name)] = None
    parts = []
    for method, path, name in routes:
        kind = _kind(ctx, name)
        models = _models_at(ctx, name)
        on = ", ".join(models[:4]) + (f" (+{len(models) - 4} more)" if len(models) > 4 else "")
        parts.append(f"the gateway called {method} {path} on provider {name} ({kind}), which the mock does not "
                     f"serve: claims on its models ({on}) are not judged")
    evidence = {**verdict.evidence, "unserved": [_compact(n, e) for n, e in unserved[:10]],
                "verdict_before_review": {"status": str(Status(verdict.status)), "reason": verdict.reason}}
    notes, shown = routing_notes(ctx)
    if notes:   # in the evidence only: the reason stays one per route, so the report groups them as one cause
        evidence["routing"] = {"notes": notes, "journal": shown}
    return Verdict(Status.ERROR, "not judged: " + "; ".join(parts), evidence, verdict.duration_s)


def _tagged(ctx: CheckContext) -> dict[str, list[dict[str, Any]]]:
    """This check's tagged entries at every provider, by provider."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, prov in ctx.providers.items():
        for tag in ctx.used_tags:
            es = prov.journal(tag=tag)
            if es:
                out.setdefault(name, []).extend(es)
    return out


def lacking_routes(ctx: CheckContext) -> list[tuple[str, dict[str, Any], list[str]]]:
    """The check's requests that went to a route without what its claim needs."""
    if not ctx.needs_caps:
        return []
    out = []
    for name, entries in _tagged(ctx).items():
        for e in entries:
            gap = ctx.needs_caps - set(e.get("route_can") or [])
            missing = [c for c in CAN_SAY if c in gap] + sorted(gap - set(CAN_SAY))
            if e.get("served", True) and missing and e.get("route_can") is not None:
                out.append((name, e, missing))
    return out


def _unsupported(ctx: CheckContext, verdict: Verdict, lacking: list[tuple[str, dict[str, Any], list[str]]]) -> Verdict:
    name, e, missing = lacking[0]
    kind = _kind(ctx, name)
    what = " or ".join(CAN_SAY.get(m, m) for m in missing)
    reason = (f"the gateway sent this claim's request to {e['method']} {e['path']} on provider {name} ({kind}), "
              f"a route of that API without {what}: the claim needs them, so it cannot be judged through "
              f"this route")
    evidence = {**verdict.evidence, "routes": [_compact(n, x) for n, x, _ in lacking[:10]],
                "verdict_before_review": {"status": str(Status(verdict.status)), "reason": verdict.reason}}
    return Verdict(Status.UNSUPPORTED, reason, evidence, verdict.duration_s)


def _who_answered(ctx: CheckContext, model: str, others: dict[str, list[dict[str, Any]]]) -> str:
    if not others:
        return "no mock provider got it (the gateway answered by itself, or sent it somewhere else)"
    fallbacks = ctx.cfg.promises.fallbacks.get(model, [])
    said = []
    for name in sorted(others):
        backups = [f for f in fallbacks if _providers_of(ctx, [f]) == {name}]
        if backups:
            said.append(f"{name}, the provider of its fallback {backups[0]}")
        else:
            said.append(f"{name}, another provider (of {', '.join(_models_at(ctx, name)[:3]) or 'no configured model'})")
    return "it went to " + " and ".join(said)


def routing_notes(ctx: CheckContext) -> tuple[list[str], list[dict[str, Any]]]:
    """Which of the check's requests never reached their model's provider, and who got them."""
    notes: list[str] = []
    shown: list[dict[str, Any]] = []
    seen: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for model, tag in ctx.sent[:6]:
        own = _providers_of(ctx, [model])
        if not own:
            continue
        (home,) = own
        if tag not in seen:
            seen[tag] = {n: es for n, p in ctx.providers.items() if (es := p.journal(tag=tag))}
        by_provider = seen[tag]
        if by_provider.get(home):
            continue
        why = " (it refuses connections, on purpose)" if ctx.providers[home].refuses else ""
        note = f"{model}'s request never reached its provider {home}{why}: {_who_answered(ctx, model, by_provider)}"
        if note not in notes:
            notes.append(note)
            shown += [_compact(n, e) for n, es in by_provider.items() for e in es][:6]
    return notes, shown


def _annotated(ctx: CheckContext, verdict: Verdict) -> Verdict:
    """Says, in the reason, which of the check's requests never reached their model's provider."""
    notes, shown = routing_notes(ctx)
    if not notes:
        return verdict
    evidence = {**verdict.evidence, "routing": {"notes": notes, "journal": shown}}
    return Verdict(verdict.status, f"{verdict.reason} ({'; '.join(notes)})", evidence, verdict.duration_s)
