"""Chaos scenarios: a fault on the gateway's link to a provider (through the Toxiproxy API) or in
the provider's own stream, and whether the gateway degraded the way it promises.

A scenario is data (matrices/chaos/*.yaml): which toxics, on which link, when (before the request
or after the first token), and what the gateway must do (`expect`):
  complete          the caller still gets the whole, correct answer (latency inside the deadline, 1-byte slices)
  clean_failure     a failover or a clean error within the bound, never a hang; a stream is never
                    passed off as complete when it is not (truncated, corrupted)
Every scenario starts from a gateway that serves normally (else it is not judged: ERROR, so one
scenario's aftermath is never blamed on the next) and ends by lifting its faults (in a `finally`)
and checking recovery: the gateway serves normally again within promises.chaos.recovery_s.
Every chaos check, whatever its verdict, is then followed by a liveness probe (_probes_liveness):
a gateway its fault left unable to answer it FAILs with that reason, its own verdict kept in the
evidence; one that could not answer it before the fault is not judged.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Optional

from harness.checks.base import (PASS, CheckContext, Deviation, NotJudged, Outcome, Unsupported, Verdict, check,
                                 poll_until)
from harness.checks.failover import trail
from harness.checks.params import params_rule
from harness.client.control import ProviderControl
from harness.expr import ExprError, evaluate
from harness.oracles import openai_chat as oc
from harness.oracles import openai_stream as os_
from harness.results.record import Status

SLACK_S = 2.0
PROMISE_NAMES = ("request_timeout_ms", "stream_timeout_ms", "total_deadline_ms")   # what toxic attributes may name


def promise_numbers(ctx: CheckContext) -> dict[str, float]:
    """What toxic attributes may be written in terms of, so one scenario fits every gateway."""
    p = ctx.cfg.promises
    timeout = (p.request_timeout_s or 30) * 1000
    return {"request_timeout_ms": timeout, "stream_timeout_ms": (p.stream_timeout_s or p.request_timeout_s or 30) * 1000,
            "total_deadline_ms": (p.total_deadline_s or (p.request_timeout_s or 30) * (1 + p.retries.count) * 2) * 1000}


def resolve(value: Any, names: dict[str, float]) -> Any:
    """A number, or an arithmetic expression over `names` ("total_deadline_ms + 3000")."""
    if not isinstance(value, str):
        return value
    try:
        return evaluate(value, names)
    except ExprError as exc:
        raise ValueError(f"toxic attribute {exc}") from None


def _bound(ctx: CheckContext) -> float:
    p = ctx.cfg.promises
    return (p.total_deadline_s or (p.request_timeout_s or 30) * (1 + p.retries.count) * 2) + SLACK_S


def _text_ok(ctx: CheckContext, model: str, tag: str, got: Optional[str]) -> Optional[str]:
    """None when `got` is exactly what a provider answered for this tag, else why not."""
    answers = [e for p in ctx.providers.values() for e in p.journal(tag=tag) if e.get("answer_text")]
    if not answers:
        return "no provider answered"
    if got not in {a["answer_text"] for a in answers}:
        return f"the caller got {got!r}, the provider answered {answers[-1]['answer_text']!r}"
    return None


class _ProxyWatch:
    """The fault proxy's own failures while a scenario runs. A proxy that broke (a bug of ours, not
    a toxic) did something no scenario asked for, so whatever the gateway did then is not judged.
    Our embedded proxy reports them (GET /errors); a real Toxiproxy does not, and is trusted."""

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self.start = self._count()

    def _errors(self) -> Optional[dict[str, Any]]:
        return self.ctx.chaos.errors() if self.ctx.chaos is not None else None

    def _count(self) -> Optional[int]:
        errors = self._errors()
        return errors["count"] if errors else None

    def check(self, evidence: dict[str, Any]) -> None:
        """Raises NotJudged when the proxy failed since the scenario began."""
        if self.start is None:
            return
        now = self._errors()
        new = (now["count"] - self.start) if now else 0
        if new > 0:
            failures = now["recent"][-new:]   # the proxy keeps the last few; the count is exact
            evidence["fault_proxy_failures"] = {"count": new, "recent": failures}
            raise NotJudged(f"not judged: the fault proxy failed ({new}x): "
                            + "; ".join(f"{f['where']}: {f['error']}" for f in failures[-3:]), evidence)


class _Faults:
    """Adds toxics and provider scripts; lifts every one of them, whatever happens."""

    def __init__(self, ctx: CheckContext, link: str, tag: str) -> None:
        self.ctx, self.link, self.tag = ctx, link, tag
        self.proxy = ctx.chaos_proxies.get(link) if ctx.chaos else None
        self.added: list[str] = []

    def add(self, toxics: list[dict[str, Any]]) -> None:
        if not toxics:
            return
        if self.proxy is None:
            raise Unsupported(f"no fault proxy on the link to {self.link!r} (chaos.enabled, chaos.providers)")
        names = promise_numbers(self.ctx)
        for i, t in enumerate(toxics):
            name = t.get("name") or f"harness_{self.tag}_{t['type']}_{i}"   # never collides with another scenario's
            attrs = {k: resolve(v, names) for k, v in (t.get("attributes") or {}).items()}
            self.ctx.chaos.add_toxic(self.proxy, t["type"], stream=t.get("stream", "downstream"),
                                     toxicity=t.get("toxicity", 1.0), name=name, **attrs)
            self.added.append(name)

    def lift(self) -> list[str]:
        """Removes every toxic this scenario added; returns what could not be removed."""
        errors = []
        for name in self.added:
            try:
                self.ctx.chaos.remove_toxic(self.proxy, name)
            except Exception as exc:  # noqa: BLE001 - reported, and the world's /reset still runs at teardown
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        self.added.clear()
        return errors


LOCK_WAIT_S = 600.0   # how long a scenario waits for the one running elsewhere (a whole group's worth)


def _lock_path(ctx: CheckContext) -> Path:
    """One lock per fault proxy: beside the run's world file when there is one (it goes with the
    run), else in the temp directory, named after the proxy's URL."""
    from harness.world.world import WORLD_ENV
    world = os.environ.get(WORLD_ENV)
    if world:
        return Path(world).with_name("chaos.lock")
    return Path(tempfile.gettempdir()) / f"harness-chaos-{hashlib.sha1(ctx.chaos.url.encode()).hexdigest()[:12]}.lock"


@contextlib.contextmanager
def _exclusive(ctx: CheckContext) -> Iterator[float]:
    """Holds the fault proxy for one scenario, across processes (xdist workers); yields how long it
    waited. Scenarios share the proxy's links and the chaos model, so two at once blame each
    other's faults on the gateway (a reset of one scenario failing another's requests at once).
    `group: chaos` sends them to one worker under `--dist loadgroup` (the harness's own run); the lock
    also holds under any other distribution, a plain `pytest -n` over the catalog say."""
    if ctx.chaos is None:   # no fault proxy: nothing shared
        yield 0.0
        return
    fd = os.open(_lock_path(ctx), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 >= LOCK_WAIT_S:
                    raise NotJudged(f"not judged: another chaos scenario held the fault proxy for {LOCK_WAIT_S:.0f}s") from None
                # Polling, not a blocking flock: every wait has a deadline. 10 ms is well inside the
                # gap between two scenarios of one worker, so a waiting worker gets its turn.
                time.sleep(0.01)
        try:
            yield round(time.monotonic() - t0, 3)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _one_at_a_time(fn: Callable[..., Verdict]) -> Callable[..., Verdict]:
    """Runs a check that uses the fault proxy alone (see _exclusive); its evidence says how long it
    queued for it."""
    @functools.wraps(fn)
    def run(ctx: CheckContext, *args: Any, **kwargs: Any) -> Verdict:
        with _exclusive(ctx) as queued_s:
            try:
                verdict = fn(ctx, *args, **kwargs)
            except Outcome as exc:
                exc.evidence.setdefault("queued_for_fault_proxy_s", queued_s)
                raise
            verdict.evidence.setdefault("queued_for_fault_proxy_s", queued_s)
            return verdict
    return run


LIVENESS_S = 2.0   # a liveness probe is answered at once: HTTP 200 within this


def _liveness(ctx: CheckContext) -> dict[str, Any]:
    """One liveness probe: GET promises.health.liveness_path without a key (else the health route, with
    a key when it needs one); its path, status and time, and `error` unless it was 200 within LIVENESS_S."""
    p = ctx.cfg.promises
    path, auth = p.health.liveness_path, False
    if not path:
        path, auth = ctx.path("health"), p.health_requires_auth
    ex = ctx.gateway.request("GET", path, auth=auth, deadline_s=LIVENESS_S)
    error = None
    if ex.error:
        error = f"GET {path} gave no answer: {ex.error}"
    elif ex.status != 200:
        error = f"GET {path} answered HTTP {ex.status}"
    elif ex.elapsed_s > LIVENESS_S:
        error = f"GET {path} took {ex.elapsed_s:.1f}s, more than {LIVENESS_S:g}s"
    return {"path": path, "status": ex.status, "elapsed_s": round(ex.elapsed_s, 3), "error": error}


def _probes_liveness(fn: Callable[..., Verdict]) -> Callable[..., Verdict]:
    """The one place a chaos check's liveness is probed: before it (a gateway already unable to answer
    is not judged, so an earlier scenario's aftermath is not blamed on this one) and after it, whatever
    the verdict but ERROR (nothing was judged then). A failed probe after the scenario is a FAIL with
    that reason; the scenario's own verdict stays in the evidence (scenario_verdict)."""
    @functools.wraps(fn)
    def run(ctx: CheckContext, *args: Any, **kwargs: Any) -> Verdict:
        before = _liveness(ctx)
        if before["error"]:
            raise NotJudged(f"not judged: before any fault the gateway failed its liveness probe ({before['error']})",
                            {"liveness_before": before})
        raised: Optional[Outcome] = None
        try:
            verdict = fn(ctx, *args, **kwargs)
        except Outcome as exc:
            if exc.status == Status.ERROR:
                raise
            raised, verdict = exc, exc.verdict()
        after = _liveness(ctx)
        verdict.evidence["liveness"] = after       # the same dict as the raised outcome's evidence
        if after["error"]:
            raise Deviation(f"after the fault the gateway failed its liveness probe: {after['error']}",
                            {**verdict.evidence, "scenario_verdict": {"status": Status(verdict.status).value,
                                                                      "reason": verdict.reason}}) from raised
        if raised is not None:
            raise raised
        return verdict
    return run


def _toxics_rule(params: dict[str, Any]) -> None:
    """Each toxic a known type with its own attributes, each attribute a number or an expression
    over the promise names: checked when the catalog loads."""
    from harness.chaos.toxics import STREAMS, TYPES
    from harness.expr import parse
    for i, t in enumerate(params.get("toxics") or []):
        where = f"toxics[{i}]"
        if t.get("type") not in TYPES:
            raise ValueError(f"{where}.type: {t.get('type')!r} is not one of {', '.join(sorted(TYPES))}")
        if t.get("stream", "downstream") not in STREAMS:
            raise ValueError(f"{where}.stream: {t.get('stream')!r} is not one of {', '.join(STREAMS)}")
        unknown = set(t) - {"type", "stream", "toxicity", "attributes", "name"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        for key, value in (t.get("attributes") or {}).items():
            if key not in TYPES[t["type"]]:
                raise ValueError(f"{where}.attributes.{key}: not an attribute of {t['type']} "
                                 f"({', '.join(sorted(TYPES[t['type']]))})")
            if isinstance(value, str):
                try:
                    parse(value, PROMISE_NAMES)
                except ExprError as exc:
                    raise ValueError(f"{where}.attributes.{key}: {exc}") from None
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{where}.attributes.{key}: a number or an expression, not {value!r}")


@check("chaos.scenario")
@params_rule(_toxics_rule)
@_one_at_a_time
@_probes_liveness
def scenario(ctx: CheckContext, expect: Literal["complete", "clean_failure"],
             toxics: Optional[list[dict[str, Any]]] = None,
             when: Literal["before_request", "after_first_token"] = "before_request", stream: bool = False,
             script: Optional[dict[str, Any]] = None, link: Optional[str] = None) -> Verdict:
    model = ctx.role("chaos")
    provider = ctx.cfg.model(model).provider
    watch = _ProxyWatch(ctx)
    # The precondition is no judgement: wait out an earlier scenario's aftermath, so this verdict is
    # about this fault. (The long waits once seen here, 8-25 s for CM-19.3, were other scenarios'
    # faults running at the same time, not LiteLLM recovering slowly: one at a time, a healthy
    # start takes under 0.2 s, and up to 2.5 s for the first request of a run.)
    baseline = _serving_normally(ctx, model, stream, within_s=BASELINE_FACTOR * ctx.cfg.chaos.recovery_s)
    if baseline["error"]:
        watch.check({"baseline": baseline})
        raise NotJudged(f"not judged: before any fault the gateway was {baseline['error']} "
                        "(still recovering from an earlier scenario?)", {"baseline": baseline})
    tag = ctx.tag()
    faults = _Faults(ctx, link or provider, tag)
    if script:
        ctx.provider_of(model).script(tag=tag, **script)
    injected_at: list[float] = []

    def on_event(ev) -> None:
        if when == "after_first_token" and not injected_at and '"content"' in ev.data and '"content":""' not in ev.data.replace(" ", ""):
            faults.add(toxics or [])
            injected_at.append(time.monotonic())

    p = ctx.cfg.promises
    promised = any((p.request_timeout_s, p.stream_timeout_s, p.total_deadline_s))
    # With no timeout promised there is no bound to hold the gateway to: the harness waits its own
    # client deadline (deadlines: in harness.yaml), and a gateway still silent then is reported as
    # not promising one, never as a pass.
    bound = _bound(ctx) if promised else (ctx.cfg.deadlines.stream_s if stream else ctx.cfg.deadlines.request_s)
    t0 = time.monotonic()
    try:
        if when == "before_request":
            faults.add(toxics or [])
        ex = ctx.chat(model, tag, stream=stream, deadline_s=bound + 10 if promised else bound,
                      on_event=on_event if stream else None)
    finally:
        lift_errors = faults.lift()
    elapsed = time.monotonic() - t0
    attempts = trail(ctx.attempts(tag, [model] + ctx.cfg.promises.fallbacks.get(model, [])))
    evidence: dict[str, Any] = {"exchange": ex.evidence(), "attempts": attempts, "elapsed_s": round(elapsed, 3),
                                "bound_s": bound, "toxics": toxics or [], "when": when, "script": script or {},
                                "baseline": baseline}
    if injected_at:
        evidence["fault_at_s"] = round(injected_at[0] - t0, 3)
    if stream:
        evidence["events"] = [e.raw.decode("utf-8", "replace") for e in ex.events[-6:]]
    if lift_errors:   # a fault that outlives its scenario would taint every claim after it
        raise RuntimeError(f"could not lift the faults: {lift_errors}")
    watch.check(evidence)
    # The harness's own client giving up (its read timeout or total deadline) is not the gateway ending it.
    gave_up = bool(ex.error) and ex.error.startswith(("timed out", "deadline"))
    if not promised and expect == "clean_failure" and gave_up:
        raise Unsupported(f"the gateway promises no upstream timeout (promises.request_timeout_s, stream_timeout_s, "
                          f"total_deadline_s), and it had not ended the request after the harness's own "
                          f"{bound:.0f}s deadline: {ex.error or 'no answer'}", evidence)
    passed, reason = _judge(ctx, model, tag, ex, stream, expect, elapsed, bound)
    if not passed:
        raise Deviation(reason, evidence)
    recovered = _serving_normally(ctx, model, stream)
    evidence["recovery"] = recovered
    watch.check(evidence)
    if recovered["error"]:
        raise Deviation(f"{reason}; but after the fault was lifted it was {recovered['error']}", evidence)
    return Verdict(PASS, f"{reason}; recovered in {recovered['after_s']:.1f}s", evidence)


def _judge(ctx: CheckContext, model: str, tag: str, ex, stream: bool, expect: str, elapsed: float,
           bound: float) -> tuple[bool, str]:
    """Whether the caller's outcome keeps the promise `expect`, and why."""
    if elapsed > bound:
        return False, (f"the caller waited {elapsed:.1f}s, beyond the {bound:.1f}s the promises allow"
                       f"{': ' + ex.error if ex.error else ''}")
    if stream:
        s = os_.parse(ex.events)
        complete = s.done and os_.finish_reason_value(s) is not None and not ex.error
        text = os_.text(s)
    else:
        body = ex.json()
        complete = not ex.error and ex.status == 200 and not oc.full_shape(body)
        text = oc.text(body)
    wrong = _text_ok(ctx, model, tag, text) if complete else None
    if expect == "complete":
        if not complete:
            return False, f"the answer did not complete: {ex.error or f'HTTP {ex.status}'}"
        if wrong:
            return False, f"the answer completed but is corrupted: {wrong}"
        primary = ctx.provider_of(model).name
        others = sorted({e["provider"] for p in ctx.providers.values() for e in p.journal(tag=tag)} - {primary})
        if others:
            return False, f"the fault stayed inside the promises, yet the gateway abandoned {primary!r} for {others}"
        return True, f"the whole answer arrived intact from {primary!r} in {elapsed:.1f}s"
    # clean_failure: a correct answer (failover, or the fault was survived) or a clean error
    if complete:
        if wrong:
            return False, f"a damaged answer was passed off as complete: {wrong}"
        return True, f"the caller got a whole, correct answer in {elapsed:.1f}s (failover or survived)"
    if stream and ex.status == 200:
        return True, (f"the stream was ended without being marked complete after {elapsed:.1f}s "
                      f"({ex.error or 'no [DONE]/finish_reason'})")
    if ex.error:
        return True, f"the connection was closed cleanly after {elapsed:.1f}s: {ex.error}"
    body = ex.json()
    if ex.status and ex.status >= 400 and isinstance(body, dict) and "error" in body:
        return True, f"a clean HTTP {ex.status} error after {elapsed:.1f}s"
    return False, f"neither an answer nor a clean error: HTTP {ex.status}, body {ex.body[:200]!r}"


RECOVERY_POLL_S = 0.5  # between two requests while waiting for the gateway to serve normally again
UPSTREAM_END_S = 10.0  # how long the provider's request may take to end after the caller left
UPSTREAM_POLL_S = 0.2  # between two looks at the provider's journal meanwhile
BASELINE_FACTOR = 3   # how much longer than the promised recovery a scenario waits for a healthy start


def _serving_normally(ctx: CheckContext, model: str, stream: bool, within_s: Optional[float] = None) -> dict[str, Any]:
    """Whether, within `within_s` (default: chaos.recovery_s, the promise), the gateway serves `model`
    in the scenario's own mode from its provider itself (not a fallback): how long that took, or
    the last reason not."""
    within_s = within_s or ctx.cfg.chaos.recovery_s
    primary = ctx.provider_of(model)

    def attempt() -> Optional[str]:
        """None when the provider itself served the request normally; else why not."""
        tag = ctx.tag()
        ex = ctx.chat(model, tag, prompt="Are you back?", stream=stream)
        if stream:
            s = os_.parse(ex.events)
            ok = ex.status == 200 and not ex.error and s.done and os_.finish_reason_value(s) is not None
        else:
            ok = ex.status == 200 and not ex.error and not oc.full_shape(ex.json())
        if ok and [e["status"] for e in primary.journal(tag=tag)] == [200]:
            return None
        return ex.error or (f"HTTP {ex.status}" if ex.status != 200 else "answered by another provider")
    polled = poll_until(attempt, lambda why: why is None, within_s, RECOVERY_POLL_S)
    return {"after_s": polled.waited_s,
            "error": None if polled.met else f"not serving normally for {within_s:.0f}s ({polled.last})"}


def _upstream_ended(prov: ProviderControl, tag: str) -> list[dict[str, Any]]:
    """The provider's journal for `tag` once its first request has ended there (or UPSTREAM_END_S
    passed): a gateway cancels the upstream request a moment after its caller left."""
    return poll_until(lambda: prov.journal(tag=tag), lambda es: bool(es and es[0]["t_done"]),
                      UPSTREAM_END_S, UPSTREAM_POLL_S).last


@check("chaos.client_disconnect")
@_one_at_a_time
@_probes_liveness
def client_disconnect(ctx: CheckContext) -> Verdict:
    """The client goes away mid-stream: the gateway cancels the upstream request and keeps serving."""
    model = ctx.role("chaos")
    watch = _ProxyWatch(ctx)   # the chaos model's link may run through the fault proxy
    tag = ctx.tag()
    prov = ctx.provider_of(model)
    prov.script(tag=tag, tokens=60, token_delay_ms=100)
    ex = ctx.chat(model, tag, stream=True, close_after_events=3)
    entries = _upstream_ended(prov, tag)
    evidence = {"exchange": ex.evidence(), "upstream": entries}
    watch.check(evidence)
    if not entries:
        raise Deviation("the request never reached the provider", evidence)
    e = entries[0]
    if e["completed"]:
        raise Deviation(f"the upstream stream ran to the end ({e['chunks_sent']} chunks) after the client left: "
                        "it was not cancelled", evidence)
    if not e["t_done"]:
        raise Deviation("10s after the client left, the upstream stream was still running", evidence)
    others = ctx.chat(model, ctx.tag())
    watch.check(evidence)
    if others.status != 200:
        raise Deviation(f"after a client left, the next request got HTTP {others.status}", evidence)
    return Verdict("PASS", f"the upstream stream was cancelled after {e['chunks_sent']} of 60+ chunks "
                           f"({e['t_done'] - e['t_received']:.1f}s) and the gateway kept serving", evidence)


@check("chaos.websocket_drop")
@_probes_liveness
def websocket_drop(ctx: CheckContext) -> Verdict:
    """A websocket session cut mid-response: the gateway cancels the upstream stream, and on
    reconnect the client gets a clean, complete response (no resume is promised, so a clean
    restart: nothing duplicated, nothing left over from the dropped one)."""
    from harness.client.ws import Session, WSError

    if "openai_realtime" not in ctx.cfg.target.protocols:
        raise Unsupported("the gateway exposes no realtime websocket route (target.protocols: openai_realtime)")
    model = ctx.model("openai")
    prov = ctx.provider_of(model)
    url = ctx.gateway.base_url.replace("http://", "ws://", 1) + ctx.path("realtime", model) + f"?model={model}"
    headers = {**ctx.gateway.base_headers, **ctx.gateway.auth, **ctx.model_headers(model)}
    first, second = ctx.tag(), ctx.tag()
    prov.script(tag=first, tokens=40, token_delay_ms=50)
    evidence: dict[str, Any] = {"url": url.split("?")[0]}

    def ask(session, tag: str) -> None:
        session.send({"type": "response.create",
                      "response": {"modalities": ["text"], "instructions": f"Say something. [h:{tag}]"}})

    try:
        s1 = Session(url, headers)
    except WSError as exc:
        raise Deviation(str(exc), evidence)
    try:
        why = s1.recv_until(lambda e: e.get("type") == "session.created", 10)
        if why:
            raise Deviation(f"no session.created: {why}", {**evidence, "events": s1.events})
        ask(s1, first)
        deltas = 0

        def three_deltas(e: dict[str, Any]) -> bool:
            nonlocal deltas
            deltas += e.get("type") == "response.output_text.delta"
            return deltas >= 3
        why = s1.recv_until(three_deltas, 15)
        if why:
            raise Deviation(f"the first response never streamed: {why}", {**evidence, "events": s1.events[-5:]})
    finally:
        s1.drop()
    t_drop = time.time()
    entries = _upstream_ended(prov, first)
    evidence["dropped_upstream"] = entries
    if not entries:
        raise Deviation("the dropped session's response never reached the provider", evidence)
    e = entries[0]
    if e["completed"] or not e["t_done"]:
        raise Deviation(f"the upstream response ran on after the client dropped ({e['chunks_sent']} of 40 deltas"
                        f"{', to the end' if e['completed'] else ', still running after 10s'}): a leaked stream", evidence)
    evidence["upstream_cancelled_after_s"] = round(max(0.0, e["t_done"] - t_drop), 3)
    try:
        s2 = Session(url, headers)
    except WSError as exc:
        raise Deviation(f"reconnecting failed: {exc}", evidence)
    try:
        why = s2.recv_until(lambda e: e.get("type") == "session.created", 10) or None
        if not why:
            ask(s2, second)
            why = s2.recv_until(lambda e: e.get("type") == "response.done", 20)
        evidence["reconnected_events"] = [ev.get("type") for ev in s2.events]
        if why:
            raise Deviation(f"after reconnecting, no complete response: {why}", evidence)
        text = "".join(ev.get("delta", "") for ev in s2.events if ev.get("type") == "response.output_text.delta")
        want = [x["answer_text"] for x in prov.journal(tag=second)]
        if [text] != want:
            raise Deviation(f"after reconnecting the text was {text!r}; the provider sent {want!r} "
                            "(duplicated or left-over output)", evidence)
        if sum(ev.get("type") == "response.done" for ev in s2.events) != 1:
            raise Deviation("after reconnecting, more than one response.done arrived", evidence)
    finally:
        s2.close()
    return Verdict("PASS", f"the upstream stream was cancelled {evidence['upstream_cancelled_after_s']}s after the drop "
                           f"({e['chunks_sent']} of 40 deltas); the reconnected session got one clean, complete response",
                   evidence)
