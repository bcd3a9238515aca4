"""Process faults: the gateway killed (SIGKILL) or stopped (SIGTERM) while requests are in flight.

The requests are held at the provider (a scripted delay) until the signal lands, so they are truly
in flight; the journal then says how often each reached the provider. These checks need the gateway
the harness started (it alone can start it again) and run in their own lane, after every other
claim, one at a time: killing the gateway under another claim would fail that claim.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from harness.checks.base import CheckContext, Deviation, NotJudged, Unsupported, Verdict, check, poll_until
from harness.client.http import Exchange
from harness.client.process import ProcessControl, RestartFailed
from harness.oracles import openai_stream as os_

ARRIVAL_S = 15.0      # how long the held requests may take to reach the provider
ARRIVAL_POLL_S = 0.05  # between two looks at the provider's journal while they arrive
SETTLE_S = 2.0        # after the restart: time for a replayed request to show in the journal
CUT_BOUND_S = 10.0    # a request in flight when the gateway dies ends for the client within this


def _control(ctx: CheckContext) -> ProcessControl:
    if ctx.process is None:
        raise Unsupported("the harness did not start this gateway (target.url), so it cannot kill and restart it")
    return ctx.process


def _hold(ctx: CheckContext, n: int, hold_ms: float, stream: bool) -> tuple[str, str, ThreadPoolExecutor, list[Future]]:
    """`n` requests held at the provider for `hold_ms`; returns once all of them have arrived there."""
    model, tag = ctx.model("openai"), ctx.tag()
    provider = ctx.provider_of(model)
    provider.script(tag=tag, headers_delay_ms=hold_ms)
    pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="in-flight")
    futures = [pool.submit(ctx.chat, model, tag, stream=stream, deadline_s=hold_ms / 1000 + 30) for _ in range(n)]
    arrived = poll_until(lambda: len(provider.journal(tag=tag)),
                         lambda k: k >= n or all(f.done() for f in futures), ARRIVAL_S, ARRIVAL_POLL_S)
    if arrived.last < n:
        pool.shutdown(wait=True)
        got = [_outcome(f.result()) for f in futures]
        raise NotJudged(f"not judged: {len(provider.journal(tag=tag))} of {n} requests reached the provider "
                        f"within {ARRIVAL_S:.0f}s, so none was in flight when the signal came ({'; '.join(got)})")
    return model, tag, pool, futures


def _outcome(ex: Exchange) -> str:
    return f"error: {ex.error}" if ex.error else f"HTTP {ex.status} after {ex.elapsed_s:.1f}s"


def _restart(ctl: ProcessControl, evidence: dict[str, Any]) -> float:
    try:
        ready_s = ctl.restart()
    except RestartFailed as exc:
        raise Deviation(f"the gateway did not start again with the same config: {exc}", evidence) from None
    evidence["restart_ready_s"] = ready_s
    return ready_s


def _serves(ctx: CheckContext, evidence: dict[str, Any]) -> None:
    ex = ctx.chat(ctx.model("openai"), ctx.tag(), deadline_s=30)
    evidence["after_restart"] = ex.evidence()
    if ex.error or ex.status != 200:
        raise Deviation(f"started again, the gateway does not serve: {_outcome(ex)}", evidence)


def _answered_once(ctx: CheckContext, model: str, tag: str, n: int, evidence: dict[str, Any]) -> None:
    time.sleep(SETTLE_S)
    arrivals = ctx.journal(model, tag)
    evidence["provider_arrivals"] = len(arrivals)
    if len(arrivals) > n:
        raise Deviation(f"{n} requests reached the provider {len(arrivals)} times across the restart: the gateway "
                        "replayed requests nobody was waiting for (billed twice)", evidence)


@check("process.killed_mid_traffic")
def killed_mid_traffic(ctx: CheckContext, in_flight: int = 3) -> Verdict:
    """SIGKILL with requests in flight: each ends for its caller at once (an error, never a hang),
    the gateway started again with the same config serves, and nothing is sent to a provider twice."""
    ctl = _control(ctx)
    model, tag, pool, futures = _hold(ctx, in_flight, hold_ms=60_000, stream=False)
    evidence: dict[str, Any] = {"in_flight": in_flight}
    try:
        t_kill = time.monotonic()
        ctl.signal("KILL")
        evidence["exit_code"] = ctl.wait_exit(10)
        ended = [f.result(timeout=CUT_BOUND_S + 30) for f in futures]
        late = time.monotonic() - t_kill
    finally:
        pool.shutdown(wait=True)
        ctx.provider_of(model).clear_script(tag)
    evidence["callers"] = [_outcome(ex) for ex in ended]
    problem = None
    if late > CUT_BOUND_S:
        problem = f"the callers of a killed gateway waited {late:.1f}s for their answer (bound {CUT_BOUND_S:.0f}s)"
    elif ok := [ex for ex in ended if not ex.error and ex.status == 200]:
        # the provider held every answer back: a 200 cannot have come from it
        problem = f"{len(ok)} caller(s) got HTTP 200 from a gateway killed before the provider answered"
    ready_s = _restart(ctl, evidence)   # first: the claims after this one need a gateway
    if problem:
        raise Deviation(problem, evidence)
    _serves(ctx, evidence)
    _answered_once(ctx, model, tag, in_flight, evidence)
    return Verdict("PASS", f"{in_flight} callers ended within {late:.1f}s of SIGKILL; ready again in {ready_s:.1f}s "
                           "and serving; no request sent twice", evidence)


@check("process.sigterm_drains")
def sigterm_drains(ctx: CheckContext, in_flight: int = 2, hold_ms: float = 2000, stream: bool = False) -> Verdict:
    """SIGTERM with requests in flight: each completes whole, then the gateway exits within the
    drain timeout; started again, it serves, and nothing was sent twice."""
    promise = ctx.cfg.promises.process
    if not promise.drains_on_sigterm:
        raise Unsupported("the gateway does not promise to drain requests in flight on SIGTERM "
                          "(promises.process.drains_on_sigterm)")
    ctl = _control(ctx)
    model, tag, pool, futures = _hold(ctx, in_flight, hold_ms=hold_ms, stream=stream)
    evidence: dict[str, Any] = {"in_flight": in_flight, "hold_ms": hold_ms, "stream": stream,
                                "drain_timeout_s": promise.drain_timeout_s}
    restarted = False
    try:
        t_term = time.monotonic()
        ctl.signal("TERM")
        ended = [f.result(timeout=promise.drain_timeout_s + 30) for f in futures]
        rc = ctl.wait_exit(max(0.0, promise.drain_timeout_s - (time.monotonic() - t_term)) + 2)
        exited_s = time.monotonic() - t_term
        evidence.update(callers=[_outcome(ex) for ex in ended], exit_code=rc, exited_after_s=round(exited_s, 2))
        answers = {e["answer_text"] for e in ctx.journal(model, tag)}
        cut = [_outcome(ex) for ex in ended if _cut(ex, stream, answers)]
        if cut:
            raise Deviation(f"{len(cut)} of {in_flight} requests in flight at SIGTERM did not complete: "
                            f"{'; '.join(cut[:3])}", evidence)
        if rc is None:
            raise Deviation(f"the gateway still ran {exited_s:.1f}s after SIGTERM, its drain timeout being "
                            f"{promise.drain_timeout_s:g}s (an orchestrator kills it then)", evidence)
        restarted = True
        ready_s = _restart(ctl, evidence)
    finally:
        pool.shutdown(wait=True)
        ctx.provider_of(model).clear_script(tag)
        if not restarted:   # the next claims need a gateway: best effort, the verdict above stands
            ctl.signal("KILL")
            try:
                ctl.restart()
            except RestartFailed:
                pass
    _serves(ctx, evidence)
    _answered_once(ctx, model, tag, in_flight, evidence)
    return Verdict("PASS", f"{in_flight} requests in flight completed; the gateway exited {exited_s:.1f}s after "
                           f"SIGTERM and was ready again in {ready_s:.1f}s", evidence)


def _cut(ex: Exchange, stream: bool, answers: set[str]) -> bool:
    """The caller did not get the provider's whole answer."""
    if ex.error or ex.status != 200:
        return True
    if stream:
        s = os_.parse(ex.events)
        return not s.done or os_.text(s) not in answers
    body = ex.json()
    try:
        return body["choices"][0]["message"]["content"] not in answers
    except (TypeError, KeyError, IndexError):
        return True
