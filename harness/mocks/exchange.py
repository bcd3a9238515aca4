"""One request at a mock provider: parse, journal, apply the script, write the answer with its faults.

Protocol modules (openai_api, anthropic_api, ...) only decide *what* to answer; this module decides
*how*: delays, error statuses, cut connections, a route the mock does not serve, and the
bookkeeping of what was actually sent.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional, Protocol

from aiohttp import web

from harness.mocks.answer import Answer
from harness.mocks.content import DEFAULT_TOKENS, find_tag, text_tokens
from harness.mocks.journal import Entry, Journal
from harness.mocks.script import Rule, Script

# A frame is the encoded bytes of one SSE event and whether it carries generated content
# (only content frames are subject to first-token and inter-token delays).
Frame = tuple[bytes, bool]

MALFORMED_EVENT = b'data: {"id": "broken", "choices": [{"delta": {"content": \n\n'  # cut-off JSON

MAX_TOKEN_TIMES = 4096   # a profile streams at most 4096 tokens; a journal of 50,000 entries stays small

_DISCONNECTS = (ConnectionResetError, ConnectionError, BrokenPipeError)


# json.dumps(data, separators=...) builds a new encoder per call; one built once writes the same
# bytes in less than half the time (at 1,000 streams the events' encoding was an eighth of the
# mock's CPU).
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


def sse_value(value: Any) -> bytes:
    """A JSON value as sse() writes it inside an event's data."""
    return _COMPACT(value).encode()


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else _COMPACT(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


# What a route of a real API can do, as far as the harness's claims go: a claim that needs one of
# these, sent through a route without it, cannot be judged there (UNSUPPORTED, not FAIL).
TOOLS, PARALLEL_TOOLS, JSON_MODE = "tools", "parallel_tools", "json"
CAN_ALL = frozenset({TOOLS, PARALLEL_TOOLS, JSON_MODE})
NOT_SERVED = "harness mock: route not served"


class Host(Protocol):
    """The mock provider an exchange happens at (server.Provider)."""
    name: str
    kind: str
    journal: Journal
    script: Script
    rng: random.Random

    def error_shape(self, status: int, message: str) -> Any: ...


@dataclass(frozen=True)
class Route:
    """One endpoint of a provider's API: `can` says what it offers (TOOLS, JSON_MODE, ...);
    `locate(request, body)` gives (model, stream) where the protocol puts them outside the body's
    `model` and `stream` fields (Gemini: in the path; Ollama: streams unless told not to)."""
    method: str
    path: str
    handler: Callable[["Exchange"], Awaitable[web.StreamResponse]]
    can: frozenset[str] = frozenset()
    locate: Optional[Callable[[web.Request, Any], tuple[Optional[str], Optional[bool]]]] = None


class Exchange:
    def __init__(self, request: web.Request, body: dict[str, Any], entry: Entry, rule: Rule | None,
                 host: Host) -> None:
        self.request = request
        self.body = body
        self.entry = entry
        self.rule = rule
        self.host = host
        self._rng = host.rng
        self._error_shape = host.error_shape
        self.malformed = False   # the body was not a JSON object; handlers answer 400 after the script

    # -- script accessors -------------------------------------------------------------------
    def tokens(self, default: int) -> int:
        return self.rule.tokens if self.rule and self.rule.tokens else default

    @property
    def omit_usage(self) -> bool:
        return bool(self.rule and self.rule.omit_usage)

    @property
    def fixed_content(self) -> str | None:
        return self.rule.content if self.rule else None

    def answer_tokens(self, model: str, prompt: str) -> list[str]:
        """The answer's tokens: the script's fixed content cut in 4-character pieces, or the
        deterministic words for this model and prompt."""
        if self.fixed_content is not None:
            return [self.fixed_content[i:i + 4] for i in range(0, len(self.fixed_content), 4)] or [""]
        return text_tokens(model, prompt, self.tokens(DEFAULT_TOKENS))

    def reject(self, problem: str, status: int = 400) -> web.Response:
        """A request that is not valid in the provider's protocol: 400 in its error shape."""
        self.entry.status = status
        self.entry.t_headers = self.entry.t_done = time.time()
        self.entry.completed = True
        return web.json_response(self._error_shape(status, problem), status=status)

    def not_served(self) -> web.Response:
        """A route this mock does not serve (or a script says to treat as such): journaled as unserved
        and answered with a 404 no real provider gives, so the harness can tell a gap in its mock from
        a fault of the gateway."""
        self.entry.served = False
        r = self.request
        problem = (f"{NOT_SERVED}: {r.method} {r.path} at provider {self.host.name!r} "
                   f"({self.host.kind}-shaped mock)")
        resp = self.reject(problem, 404)
        resp.headers["X-Harness-Mock"] = "route-not-served"
        return resp

    def settle(self, answer: Answer, native_usage: Any) -> None:
        """Journals what the provider answers: the text (or the tool calls' arguments, and each call's
        name and arguments in order), the usage in the provider's own fields and in OpenAI's, and why
        the answer ended."""
        self.entry.answer_text = "".join(c.arguments for c in answer.calls) if answer.calls else answer.text
        self.entry.answer_calls = [{"name": c.name, "arguments": c.arguments} for c in answer.calls] or None
        self.entry.answer_usage = None if self.omit_usage else native_usage
        self.entry.usage = None if self.omit_usage else answer.usage()
        self.entry.finish = answer.finish

    # -- answer -----------------------------------------------------------------------------
    async def admit(self, validate: Callable[[dict[str, Any]], str | None]) -> web.StreamResponse | None:
        """The script has its say first (delays, scripted errors, canned bodies), then the provider's
        own validation: the response that ends the exchange, or None to answer normally."""
        ended = await self.before_headers()
        if ended is not None:
            return ended
        problem = "body must be a JSON object" if self.malformed else validate(self.body)
        return self.reject(problem) if problem else None

    async def before_headers(self) -> web.StreamResponse | None:
        """Applies header delays and scripted errors; returns the response if the script ends it."""
        rule = self.rule
        if rule is None:
            return None
        if rule.unserved:
            return self.not_served()
        delay = rule.headers_delay_ms
        if rule.latency_ms:
            mean, jitter = (list(rule.latency_ms) + [0])[:2]
            delay += max(0.0, self._rng.uniform(mean - jitter, mean + jitter))
        if delay:
            await asyncio.sleep(delay / 1000)
        if rule.cut_after_chunks == 0:
            self._cut()
            return web.Response(status=500)  # never reaches the peer: the transport is closed
        if rule.body is not None and (rule.status or 200) < 300:
            # A canned answer, whatever was asked: e.g. a provider answering in another protocol.
            self.entry.status = rule.status or 200
            self.entry.t_headers = self.entry.t_done = time.time()
            self.entry.completed = True
            if isinstance(rule.body, (dict, list)):
                return web.json_response(rule.body, status=self.entry.status, headers=dict(rule.headers))
            return web.Response(text=str(rule.body), status=self.entry.status, headers=dict(rule.headers))
        if rule.status is not None and rule.status >= 300:
            body = rule.body if rule.body is not None else self._error_shape(rule.status, "scripted failure")
            self.entry.status = rule.status
            self.entry.t_headers = self.entry.t_done = time.time()
            self.entry.completed = True
            headers = dict(rule.headers)
            if isinstance(body, (dict, list)):
                return web.json_response(body, status=rule.status, headers=headers)
            return web.Response(text=str(body), status=rule.status, headers=headers)
        return None

    async def send_json(self, payload: dict[str, Any], n_tokens: int) -> web.StreamResponse:
        rule = self.rule
        if rule and (rule.first_token_delay_ms or rule.token_delay_ms):
            # A plain answer is generated before it is sent: the whole generation time comes first.
            await asyncio.sleep((rule.first_token_delay_ms + rule.token_delay_ms * max(0, n_tokens - 1)) / 1000)
        data = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **(rule.headers if rule else {})}
        if rule and rule.cut_after_chunks:
            # Cut mid-body: the status and length promise a full body that never arrives.
            resp = web.StreamResponse(status=200, headers=headers)
            resp.content_length = len(data)
            await resp.prepare(self.request)
            self.entry.status, self.entry.t_headers = 200, time.time()
            await resp.write(data[: len(data) // 2])
            self._cut()
            return resp
        self.entry.status = 200
        self.entry.t_headers = self.entry.t_done = time.time()
        self.entry.completed = True
        self.entry.chunks_sent = 1
        self.entry.mono_tokens_ns.append(time.monotonic_ns())   # a plain answer's tokens all leave now
        return web.Response(body=data, status=200, headers=headers)

    async def send_stream(self, frames: list[Frame], content_type: str = "text/event-stream") -> web.StreamResponse:
        rule = self.rule
        headers = {"Content-Type": content_type, "Cache-Control": "no-cache",
                   **(rule.headers if rule else {})}
        resp = web.StreamResponse(status=200, headers=headers)
        await resp.prepare(self.request)
        self.entry.status, self.entry.t_headers = 200, time.time()
        first_content = True
        try:
            for i, (data, is_content) in enumerate(frames):
                if rule and rule.cut_after_chunks is not None and i >= rule.cut_after_chunks:
                    self._cut()
                    return resp
                if rule and rule.end_after_chunks is not None and i >= rule.end_after_chunks:
                    self.entry.ended_early = True   # a clean end of the HTTP body, the answer unfinished
                    break
                if rule and rule.omit_done and data.strip() == b"data: [DONE]":
                    continue
                if rule and rule.stall_after_chunks is not None and i == rule.stall_after_chunks:
                    self.entry.stalled = True
                    await asyncio.sleep(rule.stall_ms / 1000)
                    if rule.close_after_stall:
                        self._cut()
                        return resp
                if is_content and rule:
                    delay = rule.first_token_delay_ms if first_content else rule.token_delay_ms
                    if delay:
                        await asyncio.sleep(delay / 1000)
                if is_content:
                    first_content = False
                if rule and rule.malformed_at_chunk == i:
                    data = MALFORMED_EVENT
                    self.entry.malformed = True
                if rule and rule.malformed_insert_at_chunk == i:
                    await resp.write(MALFORMED_EVENT)   # beside the real chunk, which still follows: no text lost
                    self.entry.malformed = True
                if is_content and self.entry.t_first_token is None:
                    self.entry.t_first_token = time.time()
                if is_content and len(self.entry.mono_tokens_ns) < MAX_TOKEN_TIMES:
                    # Stamped before the write: write() may wait for the transport to drain, and the
                    # client can read the token before it returns (out would come out negative).
                    self.entry.mono_tokens_ns.append(time.monotonic_ns())
                await resp.write(data)
                self.entry.chunks_sent += 1
            await resp.write_eof()
            self.entry.completed = not self.entry.ended_early
        except _DISCONNECTS:
            self.entry.disconnected = True
        except asyncio.CancelledError:
            self.entry.disconnected = True
            raise
        finally:
            self.entry.t_done = time.time()
        return resp

    def _cut(self) -> None:
        self.entry.cut = True
        self.entry.t_done = time.time()
        transport = self.request.transport
        if transport is not None:
            transport.close()


async def begin(request: web.Request, host: Host, route: Optional[Route] = None) -> Exchange:
    """Reads and journals the request, and finds the script rule that applies to it. Without a route
    the request is for one the mock does not serve."""
    arrived = time.monotonic_ns()   # before the body is read: the request's arrival, for per-hop timing
    raw = await request.read()
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text) if text.strip() else {}
    except (json.JSONDecodeError, RecursionError):   # nested past the parser's depth: refused as malformed, journaled
        body = None
    model, stream = route.locate(request, body) if route and route.locate else (None, None)
    if model is None:
        model = body.get("model") if isinstance(body, dict) else None
    if stream is None:
        stream = bool(body.get("stream")) if isinstance(body, dict) else False
    tag = find_tag(text)
    entry = host.journal.record(request.method, request.path, request.headers.items(),
                                body if body is not None else text, tag,
                                model if isinstance(model, str) else None, stream)
    entry.route_can = sorted(route.can) if route else []
    entry.mono_arrived_ns = arrived
    rule = host.script.take(tag, request.path, model if isinstance(model, str) else None)
    if rule is not None:
        entry.rule = rule.id
    ex = Exchange(request, body if isinstance(body, dict) else {}, entry, rule, host)
    # Scripted faults still apply first: a script may want to see even malformed traffic fail.
    ex.malformed = not isinstance(body, dict)
    return ex
