"""The harness's HTTP client for the gateway: explicit deadlines, no retries, errors as data.

SDK clients retry 429 and 5xx on their own and would hide what the gateway did; this client
sends each request exactly once, and every exchange is bounded by a total deadline (not only per
read), so a gateway that trickles bytes forever still ends in a FAIL with a reason.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import httpx

from harness.client.sse import SSEEvent, SSEParser

MAX_BODY = 8 * 1024 * 1024


@dataclass
class Exchange:
    """One request and what came back. `error` is set when no complete answer arrived."""
    method: str
    path: str
    request_body: Any
    status: Optional[int] = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: Optional[str] = None
    elapsed_s: float = 0.0
    t_headers_s: Optional[float] = None
    events: list[SSEEvent] = field(default_factory=list)   # streamed exchanges only
    t_first_event_s: Optional[float] = None
    leftover: bytes = b""    # bytes after the last complete SSE event (a cut stream)

    def json(self) -> Any:
        """The parsed body, or None when it is not JSON (the oracle then reports that)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):   # RecursionError: JSON nested ~1000 deep
            return None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def evidence(self, limit: int = 2000) -> dict[str, Any]:
        return {
            "request": {"method": self.method, "path": self.path, "body": self.request_body},
            "status": self.status, "error": self.error, "elapsed_s": round(self.elapsed_s, 3),
            "content_type": self.content_type,
            "body": self.body[:limit].decode("utf-8", "replace") if self.body else "",
        }


def _cut(resp: httpx.Response, expired: threading.Event) -> None:
    expired.set()
    stream = resp.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass   # already closed: the read has ended anyway


class GatewayClient:
    def __init__(self, base_url: str, auth_header: Optional[str], auth_value: Optional[str], *,
                 connect_s: float = 5, read_s: float = 20, request_s: float = 30, stream_s: float = 60,
                 headers: Optional[dict[str, str]] = None) -> None:
        """`headers`: sent with every request (target.headers), before the per-request ones."""
        self.base_url = base_url.rstrip("/")
        self.auth = {auth_header: auth_value} if auth_header and auth_value else {}
        self.base_headers = dict(headers or {})
        self.request_s, self.stream_s = request_s, stream_s
        self.connect_s, self.read_s = connect_s, read_s
        self._client = httpx.Client(
            timeout=httpx.Timeout(connect=connect_s, read=read_s, write=read_s, pool=connect_s),
            transport=httpx.HTTPTransport(retries=0),   # never retry: attempts are counted upstream
            follow_redirects=False, trust_env=False,    # no proxies from the environment
        )

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, body: Any = None, *, headers: Optional[dict[str, str]] = None,
                auth: bool = True, raw: Optional[bytes] = None, stream: bool = False,
                deadline_s: Optional[float] = None, on_event: Optional[Callable[[SSEEvent], None]] = None,
                close_after_events: Optional[int] = None) -> Exchange:
        """Sends once; reads the whole answer (parsing SSE when `stream`) within the deadline.
        `on_event` sees each event as it arrives (a chaos check injects a fault mid-stream there);
        `close_after_events` hangs up after that many events, as a client that goes away."""
        deadline_s = deadline_s or (self.stream_s if stream else self.request_s)
        hdrs = {"Accept": "text/event-stream" if stream else "application/json", **self.base_headers, **(headers or {})}
        if auth:
            hdrs.update(self.auth)
        content = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if content is not None:
            hdrs.setdefault("Content-Type", "application/json")
        ex = Exchange(method, path, body if raw is None else raw.decode("utf-8", "replace"))
        t0 = time.monotonic()
        parser = SSEParser() if stream else None
        watchdog: Optional[threading.Timer] = None
        expired = threading.Event()
        try:
            # Until the headers, httpx's own timeouts are the only bound: none may exceed the deadline
            # (a 2 s probe of a route that never answers must not wait the 20 s read timeout).
            first = min(self.read_s, deadline_s)
            timeout = httpx.Timeout(connect=min(self.connect_s, deadline_s), read=first, write=first,
                                    pool=min(self.connect_s, deadline_s))
            with self._client.stream(method, self.base_url + path, content=content, headers=hdrs,
                                     timeout=timeout) as resp:
                ex.status, ex.t_headers_s = resp.status_code, time.monotonic() - t0
                # The deadline is total: a gateway that trickles bytes (or stalls just under the read
                # timeout) is cut off on time. Shutting the socket down wakes the blocked read.
                watchdog = threading.Timer(max(0.0, deadline_s - (time.monotonic() - t0)), _cut, (resp, expired))
                watchdog.daemon = True
                watchdog.start()
                ex.headers = {k.lower(): v for k, v in resp.headers.items()}
                is_sse = "text/event-stream" in ex.headers.get("content-type", "")
                body = bytearray()
                for chunk in resp.iter_bytes():
                    now = time.monotonic()
                    body += chunk
                    if parser is not None and is_sse:
                        for ev in parser.feed(chunk, now - t0):
                            if ex.t_first_event_s is None:
                                ex.t_first_event_s = now - t0
                            ex.events.append(ev)
                            if on_event is not None:
                                on_event(ev)
                        if close_after_events is not None and len(ex.events) >= close_after_events:
                            ex.error = f"the client hung up on purpose after {len(ex.events)} events"
                            break
                    if now - t0 > deadline_s:
                        ex.error = f"deadline of {deadline_s:g}s passed while the answer was still arriving"
                        break
                    if len(body) > MAX_BODY:
                        ex.error = f"answer larger than {MAX_BODY} bytes; stopped reading"
                        break
                ex.body = bytes(body)
                if parser is not None:
                    ex.leftover = parser.pending()
                if expired.is_set() and not ex.error:   # the cut looked like the end of an EOF-delimited body
                    ex.error = f"deadline of {deadline_s:g}s passed while the answer was still arriving"
        except httpx.HTTPError as exc:
            if expired.is_set():
                ex.error = f"deadline of {deadline_s:g}s passed while the answer was still arriving"
            elif isinstance(exc, httpx.TimeoutException):
                ex.error = f"timed out ({type(exc).__name__}) after {time.monotonic() - t0:.1f}s"
            elif isinstance(exc, httpx.RemoteProtocolError):
                ex.error = f"connection broken: {exc}"
            else:
                ex.error = f"{type(exc).__name__}: {exc}"
        finally:
            if watchdog is not None:
                watchdog.cancel()
        ex.elapsed_s = time.monotonic() - t0
        return ex
