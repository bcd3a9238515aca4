"""Observability an operator reads: the gateway's Prometheus route agrees with what the callers saw.

A model of their own (roles.metrics) gets a small batch of chat requests, some of which fail at the
provider; the route is scraped before and after, and the deltas of the promised request counter,
error counter and latency figure (promises.metrics) are held to what the harness counted and timed.
The claims share that model's counters, so they run one after another (group `metrics`).
"""
from __future__ import annotations

import time
from typing import Any, Literal, Optional

from harness.checks.base import CheckContext, Deviation, NotJudged, Unsupported, Verdict, check, judge, poll_until
from harness.checks.params import params_rule
from harness.client.http import Exchange
from harness.config import MetricsPromise
from harness.oracles import metrics as mo

PROVIDER_DELAY_MS = 250   # each answer takes the provider this long: past the tolerance, so a figure missing it shows
POLL_S = 0.2              # between two scrapes while the counters settle


def _promise(ctx: CheckContext, figure: str) -> MetricsPromise:
    m = ctx.cfg.promises.metrics
    if m is None:
        raise Unsupported("the gateway promises no metrics route (promises.metrics)")
    if figure == "errors" and not m.errors:
        raise Unsupported("the gateway's metrics promise no error counter (promises.metrics.errors)")
    if figure == "latency" and not m.latency:
        raise Unsupported("the gateway's metrics promise no latency figure (promises.metrics.latency)")
    return m


def _scrape(ctx: CheckContext, m: MetricsPromise) -> list[mo.Sample]:
    ex = ctx.gateway.request("GET", m.path, headers={"Accept": "text/plain"})
    if ex.error or ex.status != 200:
        raise Deviation(f"GET {m.path} gave {ex.error or f'HTTP {ex.status}'}, not the promised metrics",
                        {"scrape": ex.evidence()})
    samples, problem = mo.parse(ex.body.decode("utf-8", "replace"))
    if problem:
        raise Deviation(f"GET {m.path} is not Prometheus text: {problem}", {"scrape": ex.evidence()})
    return samples


def _figures(m: MetricsPromise, samples: list[mo.Sample], model: str) -> dict[str, Optional[float]]:
    def pick(name: Optional[str]) -> Optional[float]:
        return mo.total(samples, name, m.model_label, model) if name else None
    return {"requests": pick(m.requests), "errors": pick(m.errors),
            "latency_sum": pick(f"{m.latency}_sum" if m.latency else None),
            "latency_count": pick(f"{m.latency}_count" if m.latency else None)}


def _moved(before: dict[str, Optional[float]], after: dict[str, Optional[float]]) -> dict[str, float]:
    return {k: mo.delta(before[k], after[k]) for k in before}


def _settled(ctx: CheckContext, m: MetricsPromise, model: str, base: dict[str, Optional[float]],
             want: dict[str, int]) -> tuple[dict[str, Optional[float]], float]:
    """Scrapes until every figure has moved at least as far as `want` (a gateway may count after it
    answered) or settle_s passes; then once more after a pause, so a late second count shows too.
    Returns the last figures and how long they took to settle."""
    settled = poll_until(lambda: _figures(m, _scrape(ctx, m), model),
                         lambda figures: all(_moved(base, figures)[k] >= n for k, n in want.items()),
                         m.settle_s, POLL_S)
    time.sleep(POLL_S * 2)
    return _figures(m, _scrape(ctx, m), model), settled.waited_s


def _expected(m: MetricsPromise, exs: list[Exchange]) -> dict[str, int]:
    """How far each promised figure must move for these answers: every request counted, the failed
    ones as errors, and the ones the latency figure promises to observe (latency_counts)."""
    failed = [ex for ex in exs if not 200 <= (ex.status or 0) < 300]
    counted = exs if m.latency_counts == "all" else [ex for ex in exs if ex not in failed]
    return {"requests": len(exs), "errors": len(failed) if m.errors else 0,
            "latency_count": len(counted) if m.latency else 0}


def _send(ctx: CheckContext, model: str, ok_tag: str, fail_tag: str, requests: int, errors: int) -> list[Exchange]:
    """`requests` chat requests, one after another; `errors` of them, spread out, fail at the provider.
    Each asks something else: a response cache must not answer any of them."""
    fail_at = {round(i * requests / errors) for i in range(errors)} if errors else set()
    out = []
    for i in range(requests):
        ex = ctx.chat(model, fail_tag if i in fail_at else ok_tag, prompt=f"Say something, number {i + 1}.")
        if ex.error:
            raise NotJudged(f"request {i + 1} got no complete answer ({ex.error}): what the gateway should have "
                            "counted is unknown", {"exchange": ex.evidence()})
        out.append(ex)
    return out


def _batch(params: dict[str, Any]) -> None:
    """The batch's sizes, checked when the catalog is loaded (exit 2 naming file, claim and field): a
    batch bigger than 50 outlasts the settle time's point, and with no successful request the
    figures have nothing to tell apart."""
    requests, errors, status = params.get("requests", 10), params.get("errors", 3), params.get("fail_status", 500)
    if not 1 <= int(requests) <= 50:
        raise ValueError(f"requests: {requests!r} is not from 1 to 50")
    if not 0 <= int(errors) < int(requests):
        raise ValueError(f"errors: {errors!r} is not from 0 to fewer than requests ({requests}): "
                         "some requests must succeed")
    if not 400 <= int(status) <= 599:
        raise ValueError(f"fail_status: {status!r} is not an HTTP error status (400-599)")


@check("metrics.agree")
@params_rule(_batch)
def agree(ctx: CheckContext, figure: Literal["requests", "errors", "latency"], requests: int = 10,
          errors: int = 3, fail_status: int = 500) -> Verdict:
    """After `requests` chat requests of which `errors` fail at the provider (with `fail_status`), the
    request counter rose by exactly `requests`, the error counter by the number of failed answers, and
    the latency figure observed the promised requests with a mean that agrees with the harness's within
    the tolerance."""
    m = _promise(ctx, figure)   # the batch's sizes were checked with the catalog (_batch)
    model = ctx.role("metrics")
    ok_tag, fail_tag = ctx.tag(), ctx.tag()
    prov = ctx.provider_of(model)
    try:
        prov.script(tag=ok_tag, headers_delay_ms=PROVIDER_DELAY_MS)
        prov.script(tag=fail_tag, status=fail_status)   # every attempt, retries included
        # A warm-up request, counted before the batch: a gateway's first answer carries one-off costs its
        # figure and the harness's clock would not share alike. Every figure it moves must have moved
        # before `base` is read (the latency too, which a gateway may observe after the request
        # counter), or the batch's deltas would take in the warm-up's late count.
        first = _figures(m, _scrape(ctx, m), model)
        warm = ctx.chat(model, ok_tag, prompt="Say something, to warm up.")
        base, _ = _settled(ctx, m, model, first, _expected(m, [warm]) if warm.status is not None else {})
        exs = _send(ctx, model, ok_tag, fail_tag, requests, errors)
    finally:
        # The scripts hold for every request with their tags: gone with the claim, as in the other checks
        for tag in (ok_tag, fail_tag):
            prov.clear_script(tag)
    failed = [ex for ex in exs if not 200 <= (ex.status or 0) < 300]
    counted = exs if m.latency_counts == "all" else [ex for ex in exs if ex not in failed]
    after, waited = _settled(ctx, m, model, base, _expected(m, exs))
    moved = _moved(base, after)
    evidence: dict[str, Any] = {
        "model": model, "requests": requests, "statuses": [ex.status for ex in exs],
        "elapsed_ms": [round(ex.elapsed_s * 1000, 1) for ex in exs], "before": base, "after": after,
        "moved": moved, "settled_s": waited, "warm_up_status": warm.status,
        "series": {"requests": m.requests, "errors": m.errors, "latency": m.latency, "label": m.model_label}}
    if figure == "requests":
        return judge(mo.counter_violations(f"request counter {m.requests}{{{m.model_label}={model!r}}}",
                                           moved["requests"], requests),
                     evidence, f"{m.requests} rose by {requests} for {requests} requests ({len(failed)} failed)")
    if not failed:
        raise NotJudged(f"none of the {errors} requests the provider failed reached the caller as an error: "
                        "the figures cannot be told apart", evidence)
    if figure == "errors":
        return judge(mo.counter_violations(f"error counter {m.errors}{{{m.model_label}={model!r}}}",
                                           moved["errors"], len(failed)),
                     evidence, f"{m.errors} rose by {len(failed)} for the {len(failed)} failed answers")
    harness_mean = sum(ex.elapsed_s for ex in counted) / len(counted)
    violations, mean_s = mo.latency_violations(moved["latency_sum"], moved["latency_count"], len(counted),
                                               harness_mean, m.latency_unit, m.tolerance_ms, m.tolerance_ratio)
    evidence.update(harness_mean_ms=round(harness_mean * 1000, 1),
                    gateway_mean_ms=round(mean_s * 1000, 1) if mean_s is not None else None)
    return judge([f"{m.latency}: {v}" for v in violations], evidence,
                 f"{m.latency} observed {len(counted)} requests, mean {evidence['gateway_mean_ms']} ms against "
                 f"the harness's {evidence['harness_mean_ms']} ms")
