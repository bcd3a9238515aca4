"""A lean HTTP/1.1 client for the load generator: one keep-alive connection per user, the request
written as one buffer, the answer read as the bytes arrive (chunked transfer decoded on the fly).

Why not requests or geventhttpclient: at 1,000 concurrent streams on two cores the generator's own
CPU per token decides whether TTFT is measured or queued. requests' iter_content goes through
urllib3 and http.client (several Python layers per chunk; TTFT came out x1.44 the script), and
geventhttpclient's reader fills its buffer before it yields (a token's arrival time is lost). Here a
token costs one recv() and a split. It runs under gevent's monkey-patching (locust's), so a blocking
socket is cooperative; every read is bounded by the socket timeout and the caller's deadline.
"""
from __future__ import annotations

import socket
import ssl
import time
from typing import Iterator, Optional
from urllib.parse import urlsplit

READ_SIZE = 65536


class WireError(Exception):
    """The exchange broke (connect, reset, garbage, deadline): `kind` names it for the counts."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


class Response:
    """Status and headers; `chunks()` yields the body as it arrives, `read()` the whole of it."""

    def __init__(self, conn: "Connection", status: int, headers: dict[str, str], rest: bytes, deadline: float) -> None:
        self.conn, self.status, self.headers, self._rest, self._deadline = conn, status, headers, rest, deadline
        self.length = 0   # body bytes read
        self.complete = False

    def chunks(self) -> Iterator[bytes]:
        te = self.headers.get("transfer-encoding", "").lower()
        if "chunked" in te:
            yield from self._chunked()
        elif "content-length" in self.headers:
            yield from self._sized(int(self.headers["content-length"]))
        else:
            yield from self._until_close()
        self.complete = True
        if self.headers.get("connection", "").lower() == "close":
            self.conn.close()

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def _recv(self) -> bytes:
        if time.perf_counter() > self._deadline:
            self.conn.close()
            raise WireError("deadline", "the answer took longer than the request's deadline")
        data = self.conn.recv()
        if not data:
            self.conn.close()
            raise WireError("closed", "the peer closed the connection mid-answer")
        return data

    def _sized(self, n: int) -> Iterator[bytes]:
        buf, self._rest = self._rest, b""
        while True:
            if buf:
                take = buf[:n - self.length]
                self.length += len(take)
                yield take
            if self.length >= n:
                return
            buf = self._recv()

    def _until_close(self) -> Iterator[bytes]:
        buf, self._rest = self._rest, b""
        if buf:
            self.length += len(buf)
            yield buf
        while True:
            data = self.conn.recv()
            if not data:
                self.conn.close()
                return
            self.length += len(data)
            yield data

    def _chunked(self) -> Iterator[bytes]:
        """Decodes `size CRLF data CRLF ... 0 CRLF CRLF` as bytes come in; the payload of a chunk is
        yielded as soon as it is there, even part of one (an SSE event may span two reads)."""
        buf, self._rest = self._rest, b""
        left = 0          # payload bytes of the current chunk still to come
        while True:
            if left:
                if not buf:
                    buf = self._recv()
                take, buf = buf[:left], buf[left:]
                left -= len(take)
                self.length += len(take)
                yield take
                if left == 0:
                    while len(buf) < 2:
                        buf += self._recv()
                    buf = buf[2:]   # the CRLF after the payload
                continue
            nl = buf.find(b"\r\n")
            if nl < 0:
                if len(buf) > 1024:
                    raise WireError("garbage", "no chunk size line")
                buf += self._recv()
                continue
            try:
                size = int(buf[:nl].split(b";", 1)[0], 16)
            except ValueError:
                self.conn.close()
                raise WireError("garbage", f"bad chunk size {buf[:nl][:40]!r}") from None
            buf = buf[nl + 2:]
            if size == 0:
                while b"\r\n" not in buf:   # the end: optional trailers, then an empty line
                    buf += self._recv()
                return
            left = size


class Connection:
    """One keep-alive connection to the target; reconnects when the peer closed it."""

    def __init__(self, base_url: str, timeout_s: float = 60) -> None:
        u = urlsplit(base_url)
        self.tls = u.scheme == "https"
        self.host, self.port = u.hostname or "127.0.0.1", u.port or (443 if self.tls else 80)
        self.host_header = u.netloc
        self.timeout_s = timeout_s
        self.sock: Optional[socket.socket] = None

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # a request is one small write
            if self.tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        except OSError as exc:
            raise WireError("connect", f"{type(exc).__name__}: {exc}") from None
        return sock

    def recv(self) -> bytes:
        assert self.sock is not None
        try:
            return self.sock.recv(READ_SIZE)
        except socket.timeout:
            self.close()
            raise WireError("timeout", f"nothing for {self.timeout_s:g} s") from None
        except OSError as exc:
            self.close()
            raise WireError("reset", f"{type(exc).__name__}") from None

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str],
                deadline_s: Optional[float] = None) -> Response:
        """Sends the request and reads the status line and headers; the body is the caller's to read
        (all of it, before the next request on this connection)."""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        deadline = time.perf_counter() + (deadline_s or self.timeout_s)
        for attempt in (0, 1):
            fresh = self.sock is None
            if fresh:
                self.sock = self._connect()
            try:
                assert self.sock is not None
                self.sock.sendall(data)
                buf = self.sock.recv(READ_SIZE)
            except socket.timeout:
                self.close()
                raise WireError("timeout", f"no answer for {self.timeout_s:g} s") from None
            except OSError as exc:
                self.close()
                if fresh or attempt:
                    raise WireError("reset", type(exc).__name__) from None
                continue   # a kept-alive connection the peer had closed: once more on a new one
            if not buf:
                self.close()
                if fresh or attempt:
                    raise WireError("closed", "the peer closed the connection before answering")
                continue
            break
        while b"\r\n\r\n" not in buf:
            if len(buf) > 65536:
                self.close()
                raise WireError("garbage", "no end of headers in 64 KiB")
            more = self.recv()
            if not more:
                self.close()
                raise WireError("closed", "the peer closed the connection in the headers")
            buf += more
        head_bytes, rest = buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            self.close()
            raise WireError("garbage", f"bad status line {lines[0][:60]!r}") from None
        headers_in = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers_in[k.strip().lower()] = v.strip()
        return Response(self, status, headers_in, rest, deadline)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:   # already gone; nothing to release
                pass
            self.sock = None
