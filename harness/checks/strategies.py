"""Routing strategies, read from the journal: a model served by several deployments (promises.routing)
and whether the gateway chooses among them as it promises: weighted shares, the least busy, the
fastest, the cheapest. A gateway that promises none of them gets UNSUPPORTED, never FAIL."""
from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Literal

from harness.checks.base import CheckContext, NotJudged, Unsupported, Verdict, check, judge, poll_until
from harness.config import RoutingGroup

Strategy = Literal["weighted", "least-busy", "latency-based", "cost-based"]


def _group(ctx: CheckContext, strategy: str) -> tuple[str, RoutingGroup]:
    groups = {m: g for m, g in ctx.cfg.promises.routing.items() if g.strategy == strategy}
    if not groups:
        raise Unsupported(f"the gateway promises no {strategy} routing (promises.routing)")
    model, group = sorted(groups.items())[0]
    ctx._use(model)
    return model, group


def _who(ctx: CheckContext, group: RoutingGroup, tag: str) -> list[str]:
    entries = [e for p in group.deployments for e in ctx.providers[p].journal(tag=tag)]
    return [e["provider"] for e in sorted(entries, key=lambda e: e["t_received"])]


def _send(ctx: CheckContext, model: str, tag: str, n: int, what: str) -> list[Any]:
    # distinct prompts: a response cache must not answer for a deployment
    exs = [ctx.chat(model, tag, prompt=f"{what} request {i}.") for i in range(n)]
    bad = [ex.error or ex.status for ex in exs if ex.error or ex.status != 200]
    if bad:
        raise NotJudged(f"not judged: {len(bad)} of {n} requests to {model!r} failed ({bad[:3]}), so the "
                        "choice of deployment cannot be read", {"failed": bad[:10]})
    return exs


def _weighted(ctx: CheckContext, model: str, group: RoutingGroup) -> Verdict:
    tag = ctx.tag()
    _send(ctx, model, tag, group.requests, "Weighted")
    got = Counter(_who(ctx, group, tag))
    total_w = sum(group.deployments.values())
    shares = {p: round(got[p] / group.requests, 3) for p in group.deployments}
    want = {p: round(w / total_w, 3) for p, w in group.deployments.items()}
    violations = [f"{p} got {shares[p]:.0%} of {group.requests} requests; its weight promises {want[p]:.0%} "
                  f"(+-{group.tolerance:.0%})" for p in group.deployments if abs(shares[p] - want[p]) > group.tolerance]
    if sum(got.values()) != group.requests:
        violations.append(f"the deployments got {sum(got.values())} requests for {group.requests}")
    return judge(violations, {"shares": shares, "weights": want, "counts": dict(got)},
                 f"the split {shares} is within {group.tolerance:.0%} of the weights {want}")


def _least_busy(ctx: CheckContext, model: str, group: RoutingGroup) -> Verdict:
    """Twice: one slow request holds a deployment; the next request must go to another one."""
    trials, violations = [], []
    for _ in range(2):
        slow, fast = ctx.tag(), ctx.tag()
        for p in group.deployments:
            ctx.providers[p].script(tag=slow, headers_delay_ms=2500, times=1)
        held = threading.Thread(target=ctx.chat, args=(model, slow), kwargs={"prompt": "Hold on."}, daemon=True)
        held.start()
        busy = poll_until(lambda: _who(ctx, group, slow), bool, 5, 0.05).last
        if not busy:
            held.join(10)
            raise NotJudged("not judged: the slow request never reached a deployment", {"trials": trials})
        _send(ctx, model, fast, 1, "Least-busy")
        went = _who(ctx, group, fast)
        trials.append({"busy": busy[0], "next_went_to": went})
        if went == busy[:1]:
            violations.append(f"with a request in flight at {busy[0]} and none elsewhere, the next went to {busy[0]} too")
        held.join(10)
    return judge(violations, {"trials": trials}, "each time, the next request went to an idle deployment")


def _latency(ctx: CheckContext, model: str, group: RoutingGroup) -> Verdict:
    """The first deployment is made slow (600 ms) while the gateway measures; after that, most
    requests must go to the others."""
    slow_p = list(group.deployments)[0]
    warm, after = ctx.tag(), ctx.tag()
    ctx.providers[slow_p].script(tag=warm, headers_delay_ms=600)
    _send(ctx, model, warm, 8, "Warm-up")
    ctx.providers[slow_p].script(tag=after, headers_delay_ms=600)
    _send(ctx, model, after, 10, "Measured")
    went = Counter(_who(ctx, group, after))
    share = went[slow_p] / 10
    return judge([] if share <= 0.2 else [f"{slow_p}, 600 ms slower than the others, still got {share:.0%} of the "
                                          "requests after the warm-up"],
                 {"warm_up": Counter(_who(ctx, group, warm)), "after": dict(went)},
                 f"the slow deployment got {share:.0%} of the requests after the warm-up")


def _cost(ctx: CheckContext, model: str, group: RoutingGroup) -> Verdict:
    cheapest = min(group.deployments, key=lambda p: group.deployments[p])
    tag = ctx.tag()
    _send(ctx, model, tag, 10, "Cost")
    went = Counter(_who(ctx, group, tag))
    return judge([] if set(went) == {cheapest} else [f"requests went to {dict(went)}; the cheapest is {cheapest}"],
                 {"counts": dict(went), "costs": group.deployments}, f"all 10 requests went to the cheapest, {cheapest}")


@check("routing.strategy")
def strategy(ctx: CheckContext, strategy: Strategy) -> Verdict:
    model, group = _group(ctx, strategy)
    return {"weighted": _weighted, "least-busy": _least_busy, "latency-based": _latency,
            "cost-based": _cost}[strategy](ctx, model, group)
