"""The gateway's model catalog (/v1/models) against the config and its promises."""
from __future__ import annotations

from harness.checks.base import CheckContext, Unsupported, Verdict, check, judge, require_2xx
from harness.oracles import models as mo


def _models(ctx: CheckContext):
    ex = ctx.gateway.request("GET", ctx.path("models"))
    require_2xx(ex)
    return ex


@check("models.shape")
def shape(ctx: CheckContext) -> Verdict:
    ex = _models(ctx)
    return judge(mo.list_shape(ex.json()), {"exchange": ex.evidence()}, "model list shape")


@check("models.lists_configured")
def lists_configured(ctx: CheckContext) -> Verdict:
    ex = _models(ctx)
    names = [m.name for m in ctx.cfg.models]
    return judge(mo.lists_all(ex.json(), names), {"exchange": ex.evidence()},
                 f"all {len(names)} configured models listed")


@check("models.fallback_targets_listed")
def fallback_targets_listed(ctx: CheckContext) -> Verdict:
    """Every model named in a fallback chain is served (report 004's routing bug)."""
    targets = sorted({m for chain in ctx.cfg.promises.fallbacks.values() for m in chain}
                     | set(ctx.cfg.promises.fallbacks))
    if not targets:
        raise Unsupported("the gateway promises no fallback chains (promises.fallbacks)")
    ex = _models(ctx)
    return judge(mo.lists_all(ex.json(), targets, "fallback chain model"), {"exchange": ex.evidence()},
                 f"every fallback chain model is listed: {targets}")


@check("models.no_duplicates")
def no_duplicates(ctx: CheckContext) -> Verdict:
    ex = _models(ctx)
    return judge(mo.no_duplicates(ex.json()), {"exchange": ex.evidence()}, "no duplicate model ids")
