"""Locust users for LLM gateways; run by `harness load`, or by hand:

    HARNESS_LOAD_SPEC='{"path": "/v1/chat/completions", "model": "gpt-mock", "auth": "Bearer sk-..."}' \
        locust -f harness/load/locustfile.py --headless -u 50 -r 50 -t 30s --host http://127.0.0.1:4000 StreamUser

Traps handled here: locust's own time for a `stream=True` request stops at the headers, so the
task times the stream itself (TTFT, each inter-token gap, end to end) and reports the whole
stream's time as the request's; per-token figures go to HDR histograms, never to locust's request
events, so they cannot inflate the request rate. Workers send their histograms to the master with
each report (`report_to_master`), and the master merges them exactly.

The HTTP users (ChatUser, StreamUser, OpenStreamUser, FanoutStreamUser) speak through
harness.load.wire: one keep-alive connection per stream, the answer read as the bytes arrive. At
1,000 concurrent streams on two cores the generator's CPU per token decides whether TTFT is
measured or queued: requests (HttpUser) put TTFT at x1.44 the script there, geventhttpclient
(FastHttpUser) fills its buffer before it yields, so a token's arrival time is lost. Each request is
still a locust request event (the whole stream's time), so locust's own stats and rps stay right.
RealtimeUser speaks websockets with websocket-client, a blocking client that gevent's
monkey-patching makes cooperative (asyncio `websockets` does not run under gevent).
"""
from __future__ import annotations

import gc
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
import websocket
from locust import User, constant, events, task
from locust.runners import LocalRunner, MasterRunner, WorkerRunner
from locust.exception import StopUser

from harness.load.metrics import HIGHEST_US, LOWEST_US, Discard, Recorder
from harness.load.wire import Connection, WireError

SPEC: dict[str, Any] = json.loads(os.environ.get("HARNESS_LOAD_SPEC", "{}"))

# -- a worker's own record, for tests (off by default) -------------------------------------------
# With HARNESS_LOAD_DUMP_DIR set, a process that runs users also keeps every value it records (in
# microseconds, as its histograms got them) and every count, and when it quits writes them to
# <dir>/<role>-<pid>.json with its network namespace: what its reports to the master carried, and
# what it recorded after its last report (a master's file has only its namespace).
# tests/test_load_hosts.py rebuilds the master's merged histograms from the workers' files.
DUMP_DIR = os.environ.get("HARNESS_LOAD_DUMP_DIR", "")
_KEPT: dict[str, dict[str, dict[str, Any]]] = {
    "reported": {"values": {}, "counts": {}}, "pending": {"values": {}, "counts": {}}}


class _KeepingRecorder(Recorder):
    def record(self, metric: str, seconds: float) -> None:
        super().record(metric, seconds)
        value = max(LOWEST_US, min(HIGHEST_US, int(seconds * 1_000_000)))   # as the histogram got it
        _KEPT["pending"]["values"].setdefault(metric, []).append(value)

    def count(self, name: str, n: int = 1) -> None:
        super().count(name, n)
        counts = _KEPT["pending"]["counts"]
        counts[name] = counts.get(name, 0) + n


def _kept_reported() -> None:
    """What was pending went out with a report to the master."""
    done, pending = _KEPT["reported"], _KEPT["pending"]
    for metric, values in pending["values"].items():
        done["values"].setdefault(metric, []).extend(values)
    for name, n in pending["counts"].items():
        done["counts"][name] = done["counts"].get(name, 0) + n
    _KEPT["pending"] = {"values": {}, "counts": {}}


LOCAL = _KeepingRecorder() if DUMP_DIR else Recorder()   # this process's figures since its last report
TOTAL = Recorder()     # on the master (or a lone local runner): everything


def _headers() -> dict[str, str]:
    h = {"Content-Type": "application/json", **(SPEC.get("headers") or {})}   # the target's and the model's own
    if SPEC.get("protocol") == "anthropic_messages":
        h["anthropic-version"] = "2023-06-01"
    if SPEC.get("auth"):
        h[SPEC.get("auth_header", "Authorization")] = SPEC["auth"]
    return h


PROTOCOL = SPEC.get("protocol", "openai_chat")   # openai_chat | anthropic_messages | openai_responses
HEADERS = _headers()   # the same for every request of the run


def _body(stream: bool) -> tuple[dict[str, Any], str]:
    """The request's body and its tag. A fresh tag per request keeps a response cache from answering
    in the provider's place, and finds the request in the mock provider's journal (per-hop timing)."""
    tag = f"load-{secrets.token_hex(6)}"
    prompt = f"Load test. [h:{tag}]"
    model = SPEC.get("model", "gpt-mock")
    if PROTOCOL == "openai_responses":
        return {"model": model, "input": prompt, "stream": stream}, tag
    body: dict[str, Any] = {"model": model, "max_tokens": SPEC.get("max_tokens", 64),
                            "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
        if PROTOCOL == "openai_chat":
            body["stream_options"] = {"include_usage": True}
    return body, tag


def _delta(ev: dict[str, Any]) -> tuple[bool, Any, bool]:
    """(carries generated text, output tokens if this event reports them, ends the stream)."""
    kind = ev.get("type")
    if PROTOCOL == "anthropic_messages":
        if kind == "content_block_delta":
            return bool((ev.get("delta") or {}).get("text")), None, False
        if kind == "message_delta":
            return False, (ev.get("usage") or {}).get("output_tokens"), False
        return False, None, kind == "message_stop"
    if PROTOCOL == "openai_responses":
        if kind == "response.output_text.delta":
            return bool(ev.get("delta")), None, False
        if kind == "response.completed":
            return False, ((ev.get("response") or {}).get("usage") or {}).get("output_tokens"), True
        return False, None, False
    text = any((ch.get("delta") or {}).get("content") for ch in ev.get("choices") or [])
    return text, (ev.get("usage") or {}).get("completion_tokens"), False


# -- the sending window --------------------------------------------------------------------------
# Every run is bounded in time (`duration_s`) and in requests (`max_requests`, shared among the
# processes). Past either bound users start nothing new, and the run ends once what is in flight has
# finished (or `drain_s` has passed). Cutting streams at the deadline instead would drop the slowest
# ones, the ones most likely still running, and flatter the tail percentiles.
_WINDOW: dict[str, float] = {}


@events.test_start.add_listener
def _open_window(environment, **_: Any) -> None:
    _WINDOW["until"] = time.perf_counter() + float(SPEC.get("duration_s") or 60)
    _WINDOW["warm_until"] = time.perf_counter() + float(SPEC.get("warmup_s") or 0)
    _WINDOW["left"] = max(1, int(SPEC.get("max_requests") or 10**9) // int(SPEC.get("processes") or 1))
    if not isinstance(environment.runner, WorkerRunner):   # a lone runner, or the master: it ends the run
        gevent.spawn(_end_when_drained, environment.runner)
    if isinstance(environment.runner, (WorkerRunner, LocalRunner)):   # a process that runs users
        # A full garbage collection scans every live object while every user waits: keep the
        # startup heap (locust, gevent, modules) out of those scans and collect less often (what a
        # stream leaves behind is freed by reference counting; cycles are rare: exceptions).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
        _CPU["at"] = _cpu_now()
        gevent.spawn(_probe_lag, _WINDOW["until"] + float(SPEC.get("drain_s", 10)))


# -- the generator's own floor ------------------------------------------------------------------
# What the generator itself adds to every figure, measured in the same run (harness.load.floor
# turns it into "not judged" gates): how late a greenlet wakes from a 10 ms sleep (`gen_lag`: the
# event loop is busy with other users), how late a user sends against when it meant to
# (`send_lag`), and the CPU the generator processes used (a process near 100% of a core queues).
LAG_PROBE_S = 0.01
_CPU: dict[str, tuple[float, float]] = {}


def _cpu_now() -> tuple[float, float]:
    t = os.times()
    return t.user + t.system, time.perf_counter()


def _probe_lag(until: float) -> None:
    while time.perf_counter() < until:   # bounded: the window and the drain
        t = time.perf_counter()
        gevent.sleep(LAG_PROBE_S)
        if _LAST["sent"]:   # this worker's last report is gone: nothing may be recorded after it
            return
        LOCAL.record("gen_lag", max(0.0, time.perf_counter() - t - LAG_PROBE_S))


def _count_cpu() -> None:
    """This process's CPU and wall time since the last count, as counts (summed over processes)."""
    if "at" not in _CPU:
        return
    (cpu0, wall0), (cpu1, wall1) = _CPU["at"], _cpu_now()
    _CPU["at"] = (cpu1, wall1)
    LOCAL.count("gen_cpu_ms", int((cpu1 - cpu0) * 1000))
    LOCAL.count("gen_wall_ms", int((wall1 - wall0) * 1000))


def _sent(due: float | None) -> None:
    """A user sends now; it meant to at `due` (the end of its last request plus think time, or the
    open model's slot): how late it is, the scheduling delay of a busy generator."""
    if due is not None:
        LOCAL.record("send_lag", max(0.0, time.perf_counter() - due))


def _take_request() -> None:
    """Called by a user before it starts a request (a fan counts as one): outside the window it stops."""
    if time.perf_counter() >= _WINDOW.get("until", float("inf")) or _WINDOW.get("left", 1) <= 0:
        raise StopUser()
    _WINDOW["left"] = _WINDOW.get("left", 1) - 1


def _end_when_drained(runner) -> None:
    drain_deadline = _WINDOW["until"] + float(SPEC.get("drain_s", 10))
    had_users = False
    while time.perf_counter() < drain_deadline:
        # The master knows its workers' user counts from their reports (not their heartbeats), and
        # the report that says a worker has no user left carries every figure of its requests.
        users = runner.user_count
        had_users = had_users or users > 0
        if had_users and users == 0:
            break
        gevent.sleep(0.25)
    if isinstance(runner, MasterRunner):
        _collect_last_reports(runner)
    runner.quit()   # what still runs now is cut, counted as started and never as a figure


# -- the workers' last reports ------------------------------------------------------------------
# Before it quits, the master asks every worker for its last figures (what the lag probe and the
# CPU count recorded since its last report) and waits for them, bounded: locust's own report on
# quit is waited for 0.5 s only, and one that came later was lost. After its last report a worker
# records nothing more, so the master's merge is the whole of what its workers measured.
LAST_REPORT_WAIT_S = 10
_LAST: dict[str, Any] = {"sent": False, "got": set()}


@events.init.add_listener
def _last_report_messages(environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message("harness_last_report", _send_last_report)
    elif isinstance(environment.runner, MasterRunner):
        environment.runner.register_message("harness_hdr", _merge_last_report)


def _collect_last_reports(runner) -> None:
    workers = {c.id for c in runner.clients.all if c not in runner.clients.missing}
    runner.send_message("harness_last_report")
    deadline = time.perf_counter() + LAST_REPORT_WAIT_S
    while not workers <= _LAST["got"] and time.perf_counter() < deadline:
        gevent.sleep(0.02)


def _send_last_report(environment, msg, **_: Any) -> None:
    _LAST["sent"] = True
    blob = _report()
    _CPU.pop("at", None)   # the CPU count ends here too
    environment.runner.send_message("harness_hdr", blob)


def _merge_last_report(environment, msg, **_: Any) -> None:
    TOTAL.merge(msg.data or {})
    _LAST["got"].add(msg.node_id)


def _error(kind: str, rec: Recorder | None = None) -> None:
    rec = rec or LOCAL
    rec.count("requests")
    rec.count(f"error:{kind}")


_DISCARD = Discard()


def _recorder(t0: float) -> Recorder:
    """Where a request sent at t0 records: LOCAL, or during the warm-up (`warmup_s`: connections
    opened, a burst of first requests) nowhere, so the figures are of the steady state; LOCAL
    counts those requests as `warmup`."""
    if t0 < _WINDOW.get("warm_until", 0.0):
        LOCAL.count("warmup")
        return _DISCARD
    return LOCAL


PATH = SPEC.get("path", "/v1/chat/completions")
TIMEOUT_S = float(SPEC.get("timeout_s", 60))   # the profile's timeout_s: a request not done by then is an error


def _fire(environment, name: str, t0: float, length: int, exc: Exception | None) -> None:
    """One locust request event per request (a whole stream): locust's stats and rps stay right."""
    environment.events.request.fire(request_type="POST", name=name, response_time=(time.perf_counter() - t0) * 1000,
                                    response_length=length, exception=exc, context={})


class WireUser(User):
    """A user with lean keep-alive connections (harness.load.wire), closed when it stops."""
    abstract = True
    wait_time = constant(SPEC.get("think_s", 0))
    due: float | None = None   # when the next request is meant to go: the last one's end plus think time

    def on_start(self) -> None:
        self.conns: list[Connection] = []

    def conn(self, i: int = 0) -> Connection:
        while len(self.conns) <= i:
            self.conns.append(Connection(self.host, TIMEOUT_S))
        return self.conns[i]

    def on_stop(self) -> None:
        for c in self.conns:
            c.close()


class ChatUser(WireUser):
    """Plain chat completions; latency is the whole exchange."""

    @task
    def chat(self) -> None:
        _take_request()
        _sent(self.due)
        body, tag = _body(False)
        payload = json.dumps(body).encode()
        sent_ns, t0 = time.monotonic_ns(), time.perf_counter()
        rec = _recorder(t0)
        rec.count("started")
        try:
            r = self.conn().request("POST", PATH, payload, HEADERS, TIMEOUT_S)
            answer = r.read()
        except WireError as exc:
            _fire(self.environment, "chat", t0, 0, exc)
            _error(f"broken:{exc.kind}", rec)
        else:
            if r.status != 200:
                _fire(self.environment, "chat", t0, len(answer), RuntimeError(f"HTTP {r.status}"))
                _error(f"http_{r.status}", rec)
            else:
                rec.count("requests")
                rec.record("latency", time.perf_counter() - t0)
                rec.stamp(tag, sent_ns, time.monotonic_ns())   # a plain answer's first token is the answer
                _fire(self.environment, "chat", t0, len(answer), None)
        self.due = time.perf_counter() + SPEC.get("think_s", 0)


@dataclass
class Arrivals:
    """When a response's text arrived: the first piece (TTFT), the gaps between pieces (ITL), how
    many pieces, and the output tokens the gateway's usage reported, if it did."""
    t0: float
    tag: str = ""
    sent_ns: int = 0            # CLOCK_MONOTONIC, like the mock's journal: per-hop attribution
    first_ns: int = 0
    first: float | None = None
    last: float = 0.0
    tokens: int = 0
    usage_tokens: int | None = None
    gaps: list[float] = field(default_factory=list)

    def piece(self, now: float) -> None:
        if self.first is None:
            self.first, self.first_ns = now, time.monotonic_ns()
        else:
            self.gaps.append(now - self.last)
        self.last = now
        self.tokens += 1


def _stream_once(user: WireUser, t0: float, intended: float | None = None, step: str | None = None,
                 slot: int = 0) -> float | None:
    """One SSE request on the user's connection `slot`: TTFT, each inter-token gap, end to end, time
    per output token. Returns its TTFT (seconds) when the stream completed, else None."""
    rec = _recorder(t0)
    rec.count("started")
    body, tag = _body(True)
    payload = json.dumps(body).encode()
    name = f"{PROTOCOL}.stream"
    sent_ns = time.monotonic_ns()
    seen, done, buf = Arrivals(t0, tag, sent_ns), False, b""
    try:
        r = user.conn(slot).request("POST", PATH, payload, HEADERS, TIMEOUT_S)
        if r.status != 200:
            length = len(r.read())
            _fire(user.environment, name, t0, length, RuntimeError(f"HTTP {r.status}"))
            return _error(f"http_{r.status}", rec)
        for chunk in r.chunks():
            now = time.perf_counter()   # when these bytes arrived: every event in them came now
            buf += chunk
            if b"\n" not in chunk:
                continue
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                    continue
                try:
                    ev = json.loads(data)
                except ValueError:
                    continue
                has_text, reported, ends = _delta(ev)
                seen.usage_tokens = reported if reported is not None else seen.usage_tokens
                done = done or ends
                if has_text:
                    seen.piece(now)
    except WireError as exc:   # a broken stream is a finding, not a crash
        _fire(user.environment, name, t0, 0, exc)
        return _error(f"stream_broken:{exc.kind}", rec)
    end = time.perf_counter()
    if not done or seen.first is None:
        _fire(user.environment, name, t0, r.length, RuntimeError("stream ended without [DONE] or content"))
        return _error("incomplete_stream", rec)
    _fire(user.environment, name, t0, r.length, None)   # the whole stream's time, not the headers'
    _finish(seen, end, intended, step, rec)
    return seen.first - t0


def _finish(seen: Arrivals, end: float, intended: float | None = None, step: str | None = None,
            rec: Recorder | None = None) -> None:
    """A complete stream: e2e, and time per output token (e2e - ttft) / (tokens - 1) with the
    tokens the gateway's usage reports (`tpot`, counted as tpot_from_usage) and, beside it, the
    tokens counted from the chunks (`tpot_chunks`); without usage, `tpot` falls back to the chunks
    (counted as tpot_from_chunks) so the report can say which count it used.

    A stream's figures are recorded only here, once it is complete: a stream cut off by the end of
    the run, or broken, leaves no TTFT behind, so every figure has exactly one complete stream
    under it (streams still running when the drain ends are counted as started, not as figures)."""
    rec = rec or LOCAL
    t0, first, tokens, usage_tokens = seen.t0, seen.first, seen.tokens, seen.usage_tokens
    assert first is not None   # callers finish only streams that carried text
    rec.count("requests")
    rec.record("ttft", first - t0)
    rec.sample(first - t0)
    if seen.tag:
        rec.stamp(seen.tag, seen.sent_ns, seen.first_ns)
    if intended is not None:   # open model: from when it should have been sent
        rec.record("ttft_intended", first - intended)
        if step:
            rec.record(f"ttft_intended@{step}", first - intended)
    for g in seen.gaps:
        rec.record("itl", g)
    rec.count("tokens_chunks", tokens)
    if usage_tokens is not None:
        rec.count("tokens_usage", usage_tokens)
    rec.record("e2e", end - t0)
    if intended is not None:
        rec.record("e2e_intended", end - intended)
        if step:
            rec.record(f"e2e_intended@{step}", end - intended)
    if tokens > 1:
        rec.record("tpot_chunks", (end - first) / (tokens - 1))
    if usage_tokens and usage_tokens > 1:
        rec.record("tpot", (end - first) / (usage_tokens - 1))
        rec.count("tpot_from_usage")
    elif tokens > 1:
        rec.record("tpot", (end - first) / (tokens - 1))
        rec.count("tpot_from_chunks")


class StreamUser(WireUser):
    """Closed model: SSE chat completions back to back (plus think time)."""

    @task
    def stream(self) -> None:
        _take_request()
        _sent(self.due)
        _stream_once(self, time.perf_counter())
        self.due = time.perf_counter() + SPEC.get("think_s", 0)


def _schedule() -> list[tuple[float, float, str]]:
    """The open model's arrival rate over time: [(from second, rate, label)]. One constant rate,
    or steps that climb (or fall) so the report shows where latency starts to give."""
    steps = SPEC.get("steps") or []
    if not steps:
        return [(0.0, float(SPEC.get("rate_rps") or 1.0), "")]
    out, at = [], 0.0
    for st in steps:
        out.append((at, float(st["rate_rps"]), f"{st['rate_rps']:g}rps"))
        at += float(st["duration_s"])
    return out


SCHEDULE = _schedule()
_START: list[float] = []   # when this process's first open-model user started: second 0 of the schedule
_NEXT: list[float] = []    # the next intended send time in this process


def _rate_at(t: float) -> tuple[float, str]:
    elapsed = t - _START[0]
    rate, label = SCHEDULE[0][1], SCHEDULE[0][2]
    for at, r, lab in SCHEDULE:
        if elapsed >= at:
            rate, label = r, lab
    return rate, label


class OpenStreamUser(WireUser):
    """Open model: arrivals follow the profile's rate (or the rate of the current step), whatever
    the gateway does. The process keeps one clock of intended send times; a free user takes the
    next slot and waits for it. When the gateway is slow and every user is busy, slots pile up in
    the past and the request that takes one counts its `*_intended` figures from when it should
    have been sent: a stalled gateway cannot hide behind coordinated omission (wrk2's
    correction). Each of N worker processes sends 1/N of the rate, so --workers keeps the total.
    With steps, the intended figures are also kept per step (`e2e_intended@20rps`)."""
    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        if not _START:
            _START.append(time.perf_counter())
            _NEXT.append(time.perf_counter())

    @task
    def stream(self) -> None:
        intended = _NEXT[0]
        if intended - _START[0] >= SPEC.get("duration_s", float("inf")):
            raise StopUser()   # the schedule is over: no slot past the profile's end, even while locust winds down
        _take_request()
        rate, step = _rate_at(intended)
        _NEXT[0] = intended + SPEC.get("processes", 1) / rate   # gevent: no other user runs in between
        wait = intended - time.perf_counter()
        if wait > 0:
            gevent.sleep(wait)
            _sent(intended)   # a slot in the past is the gateway's queueing (ttft_intended), not the generator's
        _stream_once(self, time.perf_counter(), intended=intended, step=step or None)


class FanoutStreamUser(WireUser):
    """One logical request fans out to `fanout` concurrent streams (an agent's parallel calls);
    `fan` is the time until the slowest of them is done and `fan_ttft` until the last of them has
    its first token, so p95/p99 are taken across the fan. Only fans whose streams all completed
    have these figures; the counts say how many streams of how many finished (`fan_streams`,
    `fan_streams_finished`, `fans_incomplete`), and a fan gate with incomplete fans fails."""
    @task
    def fan(self) -> None:
        _take_request()
        _sent(self.due)
        t0 = time.perf_counter()
        n = SPEC.get("fanout", 4)
        # A connection per stream of the fan: they run at once.
        jobs = [gevent.spawn(_stream_once, self, time.perf_counter(), None, None, i) for i in range(n)]
        gevent.joinall(jobs, timeout=TIMEOUT_S)
        end = time.perf_counter()
        # A stream still running is ended here, and its connection closed mid-answer: left running,
        # it would share its connection with the next fan's stream on the same slot.
        # The completed streams' TTFTs: one that failed, was cut or is still running has none.
        ttfts = [j.value for j in jobs if j.dead and j.value is not None]
        # A fan sent during the warm-up leaves no figure, like its streams (they count as `warmup`).
        rec = _DISCARD if t0 < _WINDOW.get("warm_until", 0.0) else LOCAL
        for i, job in enumerate(jobs):
            if not job.dead:
                job.kill(block=True, timeout=2)
                self.conn(i).close()
                _error("stream_broken:timeout", rec)
        rec.count("fans")
        rec.count("fan_streams", n)
        rec.count("fan_streams_finished", len(ttfts))
        if len(ttfts) < n:
            # Timed by the streams that did finish, the fan would look faster than it was.
            rec.count("fans_incomplete")
        else:
            rec.record("fan", end - t0)
            rec.record("fan_ttft", max(ttfts))
        self.due = time.perf_counter() + SPEC.get("think_s", 0)


class RealtimeUser(User):
    """Responses over a realtime websocket (OpenAI Realtime events): one session per user, kept
    open, one `response.create` after another in it. TTFT counts from sending response.create to
    the first `response.output_text.delta`; opening the session is timed apart (`ws_connect`). A
    broken session is an error of its kind and the next task opens a fresh one."""
    wait_time = constant(SPEC.get("think_s", 0))
    ws: Any = None

    def _open(self) -> Any:
        t0 = time.perf_counter()
        url = self.host.replace("http", "ws", 1) + SPEC.get("path", "/v1/realtime") + f"?model={SPEC.get('model', '')}"
        headers = [f"{k}: {v}" for k, v in _headers().items() if k != "Content-Type"]
        ws = websocket.create_connection(url, header=headers, timeout=TIMEOUT_S)
        first = json.loads(ws.recv())
        if first.get("type") != "session.created":
            ws.close()
            raise ValueError(f"first event {first.get('type')!r}, not session.created")
        LOCAL.record("ws_connect", time.perf_counter() - t0)
        return ws

    def _fire(self, t0: float, exc: Exception | None) -> None:
        self.environment.events.request.fire(request_type="WS", name="realtime.response", context={},
                                             response_time=(time.perf_counter() - t0) * 1000, response_length=0,
                                             exception=exc)

    @task
    def respond(self) -> None:
        _take_request()   # outside the try below: StopUser is an Exception, and must reach locust
        t0 = time.perf_counter()
        try:
            if self.ws is None:
                self.ws = self._open()
            t0 = time.perf_counter()
            LOCAL.count("started")
            deadline = t0 + TIMEOUT_S
            self.ws.send(json.dumps({"type": "response.create", "response": {
                "modalities": ["text"], "instructions": f"Load test. [h:load-{secrets.token_hex(6)}]"}}))
            seen = Arrivals(t0)
            while True:
                if time.perf_counter() > deadline:
                    raise TimeoutError("no response.done before the deadline")
                ev = json.loads(self.ws.recv())
                now = time.perf_counter()
                kind = ev.get("type")
                if kind == "error":
                    raise ValueError(f"error event: {(ev.get('error') or {}).get('message', '')[:200]}")
                if kind == "response.output_text.delta" and ev.get("delta"):
                    seen.piece(now)
                elif kind == "response.done":
                    seen.usage_tokens = ((ev.get("response") or {}).get("usage") or {}).get("output_tokens")
                    break
        except Exception as exc:  # noqa: BLE001 - a broken session is a finding, not a crash
            self._fire(t0, exc)
            _error(f"ws_broken:{type(exc).__name__}")
            self.on_stop()
            return
        end = time.perf_counter()
        if seen.first is None:
            self._fire(t0, ValueError("response.done without any text"))
            return _error("incomplete_stream")
        self._fire(t0, None)
        _finish(seen, end)

    def on_stop(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close(timeout=2)
            except Exception:  # noqa: BLE001 - closing a broken socket may fail; it is gone either way
                pass
            self.ws = None


def _report() -> dict[str, Any]:
    """What this worker recorded since its last report, taken out of LOCAL."""
    _count_cpu()
    blob = LOCAL.encode()
    LOCAL.__init__()   # each report carries what is new since the last one
    if DUMP_DIR:
        _kept_reported()
    return blob


@events.report_to_master.add_listener
def _send_histograms(client_id: str, data: dict[str, Any]) -> None:
    data["harness_hdr"] = _report()


@events.worker_report.add_listener
def _merge_worker(client_id: str, data: dict[str, Any]) -> None:
    TOTAL.merge(data.get("harness_hdr") or {})


@events.quitting.add_listener
def _write(environment, **kwargs: Any) -> None:
    from locust.runners import WorkerRunner
    if isinstance(environment.runner, WorkerRunner) or not SPEC.get("out"):
        return
    if isinstance(environment.runner, LocalRunner):
        _count_cpu()
    TOTAL.merge(LOCAL.encode())   # a local run (no workers) recorded here
    stats = environment.stats.total
    with open(SPEC["out"], "w") as f:
        json.dump({"hdr": TOTAL.encode(), "table": TOTAL.table(), "counts": TOTAL.counts,
                   "locust": {"requests": stats.num_requests, "failures": stats.num_failures,
                              "rps": stats.total_rps}}, f)


@events.quitting.add_listener
def _dump(environment, **kwargs: Any) -> None:
    runner = environment.runner
    role = ("worker" if isinstance(runner, WorkerRunner) else "local" if isinstance(runner, LocalRunner)
            else "master" if isinstance(runner, MasterRunner) else None)
    if not DUMP_DIR or role is None:
        return
    with open(os.path.join(DUMP_DIR, f"{role}-{os.getpid()}.json"), "w") as f:
        json.dump({"role": role, "pid": os.getpid(), "netns": os.readlink("/proc/self/ns/net"),
                   "reported": _KEPT["reported"], "after_last_report": _KEPT["pending"]}, f)
