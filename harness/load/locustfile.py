"""Locust users for LLM gateways; run by `harness load`, or by hand:

    HARNESS_LOAD_SPEC='{"path": "/v1/chat/completions", "model": "gpt-mock", "auth": "Bearer sk-..."}' \
        locust -f harness/load/locustfile.py --headless -u 50 -r 50 -t 30s --host http://127.0.0.1:4000 StreamUser

Traps handled here: locust's own time for a `stream=True` request stops at the headers, so the
task times the stream itself (TTFT, each inter-token gap, end to end) and reports the whole
stream's time as the request's; per-token figures go to HDR histograms, never to locust's request
events, so they cannot inflate the request rate. Workers send their histograms to the master with
each report (`report_to_master`), and the master merges them exactly.

ChatUser is a FastHttpUser (geventhttpclient), the faster client. StreamUser is not: its
`iter_content` reads until it has filled the chunk size, so a token's arrival time is lost (TTFT
came out as the whole stream's time in our accuracy test); requests' `iter_content(None)`
yields bytes as they arrive, so StreamUser is an HttpUser.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from typing import Any

import gevent
from locust import FastHttpUser, HttpUser, constant, events, task

from harness.load.metrics import Recorder

SPEC: dict[str, Any] = json.loads(os.environ.get("HARNESS_LOAD_SPEC", "{}"))
LOCAL = Recorder()     # this process's figures since its last report
TOTAL = Recorder()     # on the master (or a lone local runner): everything


def _headers() -> dict[str, str]:
    h = {"Content-Type": "application/json"}
    if SPEC.get("protocol") == "anthropic_messages":
        h["anthropic-version"] = "2023-06-01"
    if SPEC.get("auth"):
        h[SPEC.get("auth_header", "Authorization")] = SPEC["auth"]
    return h


PROTOCOL = SPEC.get("protocol", "openai_chat")   # openai_chat | anthropic_messages | openai_responses


def _body(stream: bool) -> dict[str, Any]:
    # A fresh tag per request keeps a response cache from answering in the provider's place.
    prompt = f"Load test. [h:load-{secrets.token_hex(6)}]"
    model = SPEC.get("model", "gpt-mock")
    if PROTOCOL == "openai_responses":
        return {"model": model, "input": prompt, "stream": stream}
    body: dict[str, Any] = {"model": model, "max_tokens": SPEC.get("max_tokens", 64),
                            "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
        if PROTOCOL == "openai_chat":
            body["stream_options"] = {"include_usage": True}
    return body


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


def _error(kind: str) -> None:
    LOCAL.count("requests")
    LOCAL.count(f"error:{kind}")


class ChatUser(FastHttpUser):
    """Plain chat completions; latency is the whole exchange."""
    wait_time = constant(SPEC.get("think_s", 0))
    network_timeout = connection_timeout = SPEC.get("timeout_s", 60)

    @task
    def chat(self) -> None:
        t0 = time.perf_counter()
        with self.client.post(SPEC.get("path", "/v1/chat/completions"), json=_body(False), headers=_headers(),
                              name="chat", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
                return _error(f"http_{r.status_code}")
            LOCAL.count("requests")
            LOCAL.record("latency", time.perf_counter() - t0)


def _stream_once(client, t0: float, intended: float | None = None) -> None:
    """One SSE request: TTFT, each inter-token gap, end to end, time per output token."""
    with client.post(SPEC.get("path", "/v1/chat/completions"), json=_body(True), headers=_headers(),
                     name=f"{PROTOCOL}.stream", stream=True, catch_response=True, timeout=SPEC.get("timeout_s", 60)) as r:
        if r.status_code != 200:
            r.failure(f"HTTP {r.status_code}")
            return _error(f"http_{r.status_code}")
        first = last = None
        tokens, usage_tokens, done, buf = 0, None, False, b""
        try:
            for chunk in r.iter_content(chunk_size=None):
                now = time.perf_counter()
                buf += chunk
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
                    usage_tokens = reported if reported is not None else usage_tokens
                    done = done or ends
                    if has_text:
                        if first is None:
                            first = now
                            LOCAL.record("ttft", now - t0)
                            if intended is not None:   # open model: from when it should have been sent
                                LOCAL.record("ttft_intended", now - intended)
                            LOCAL.sample(now - t0)
                        else:
                            LOCAL.record("itl", now - last)
                        last = now
                        tokens += 1
        except Exception as exc:  # noqa: BLE001 - a broken stream is a finding, not a crash
            r.failure(f"stream broke: {type(exc).__name__}")
            return _error(f"stream_broken:{type(exc).__name__}")
        end = time.perf_counter()
        r.request_meta["response_time"] = (end - t0) * 1000   # the whole stream, not the headers
        if not done or first is None:
            r.failure("stream ended without [DONE] or content")
            return _error("incomplete_stream")
        LOCAL.count("requests")
        LOCAL.count("tokens_chunks", tokens)
        if usage_tokens is not None:
            LOCAL.count("tokens_usage", usage_tokens)
        LOCAL.record("e2e", end - t0)
        if intended is not None:
            LOCAL.record("e2e_intended", end - intended)
        if tokens > 1:
            # Time per output token: (e2e - ttft) / (tokens - 1), tokens from usage when given.
            n = usage_tokens if usage_tokens and usage_tokens > 1 else tokens
            LOCAL.record("tpot", (end - first) / (n - 1))


class StreamUser(HttpUser):
    """Closed model: SSE chat completions back to back (plus think time)."""
    wait_time = constant(SPEC.get("think_s", 0))

    @task
    def stream(self) -> None:
        _stream_once(self.client, time.perf_counter())


class OpenStreamUser(HttpUser):
    """Open model: each user sends on a fixed schedule (the profile's arrival rate shared among the
    users), whatever the gateway does. When an answer is late the next request is late too, and its
    `*_intended` figures count from when it should have been sent: a stalled gateway cannot hide
    behind coordinated omission (wrk2's correction)."""
    wait_time = constant(0)

    def on_start(self) -> None:
        self.interval = SPEC.get("users", 1) / max(SPEC.get("rate_rps", 1.0), 1e-6)
        self.next_at = time.perf_counter() + self.interval * (id(self) % 1000) / 1000   # spread the start

    @task
    def stream(self) -> None:
        now = time.perf_counter()
        if self.next_at > now:
            gevent.sleep(self.next_at - now)
        intended = self.next_at
        self.next_at += self.interval
        _stream_once(self.client, time.perf_counter(), intended=intended)


class FanoutStreamUser(HttpUser):
    """One logical request fans out to `fanout` concurrent streams (an agent's parallel calls);
    `fan` is the time until the slowest of them is done, so p95/p99 are taken across the fan."""
    wait_time = constant(SPEC.get("think_s", 0))

    @task
    def fan(self) -> None:
        t0 = time.perf_counter()
        jobs = [gevent.spawn(_stream_once, self.client, time.perf_counter()) for _ in range(SPEC.get("fanout", 4))]
        gevent.joinall(jobs, timeout=SPEC.get("timeout_s", 60))
        LOCAL.record("fan", time.perf_counter() - t0)
        LOCAL.count("fans")


@events.report_to_master.add_listener
def _send_histograms(client_id: str, data: dict[str, Any]) -> None:
    data["harness_hdr"] = LOCAL.encode()
    LOCAL.__init__()   # each report carries what is new since the last one


@events.worker_report.add_listener
def _merge_worker(client_id: str, data: dict[str, Any]) -> None:
    TOTAL.merge(data.get("harness_hdr") or {})


@events.quitting.add_listener
def _write(environment, **kwargs: Any) -> None:
    from locust.runners import WorkerRunner
    if isinstance(environment.runner, WorkerRunner) or not SPEC.get("out"):
        return
    TOTAL.merge(LOCAL.encode())   # a local run (no workers) recorded here
    stats = environment.stats.total
    with open(SPEC["out"], "w") as f:
        json.dump({"hdr": TOTAL.encode(), "table": TOTAL.table(), "counts": TOTAL.counts,
                   "locust": {"requests": stats.num_requests, "failures": stats.num_failures,
                              "rps": stats.total_rps}}, f)
