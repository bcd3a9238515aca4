"""One TCP fault proxy: listens, connects each client to the upstream, and applies its toxics.

Each connection has two links (upstream: client to server; downstream: server to client). A link
reads in large chunks and hands them to a writer task with a release time, so a latency toxic
delays bytes without throttling throughput (the pipeline stays full), the way Toxiproxy does. The
buffer between the two is bounded (BUFFER_BYTES): a writer that cannot keep up stops the reader,
and TCP pushes back on the sender, as it would without the proxy. Toxics (harness/chaos/toxics.py)
are read per chunk, so adding or removing one takes effect on a live connection at once.

A failure of the proxy itself (an exception that is not the network's) is logged, counted and kept
(`errors`, served at GET /errors), so a scenario through a broken proxy is reported as not judged
instead of being blamed on the gateway.
"""
from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import time
import traceback
from collections import deque
from typing import Any, Callable, Optional

from harness.chaos.toxics import Toxic, ToxicError
from harness.netguard import is_loopback_host

log = logging.getLogger("harness.chaos")

READ_SIZE = 256 * 1024
# Bytes a link holds between its reader and its writer. Enough for a latency toxic to keep the
# pipeline full at loopback speed (BUFFER_BYTES / latency: 4 GB/s at 1 ms, 8 MB/s at 500 ms), far
# more than an LLM stream carries; beyond it the reader waits for the writer.
BUFFER_BYTES = 4 * 1024 * 1024
CONNECT_S = 10      # connecting to the upstream
STOP_S = 2.0        # how long stopping waits for connections to close before it aborts them
NETWORK_ERRORS = (ConnectionError, OSError, asyncio.IncompleteReadError, EOFError)
WILDCARD = {"", "0.0.0.0", "[::]", "::"}


class ProxyErrors:
    """The proxy's own failures: counted, the last few kept with where they happened."""

    KEEP = 20

    def __init__(self) -> None:
        self.count = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=self.KEEP)

    def record(self, where: str, exc: BaseException) -> None:
        self.count += 1
        self.recent.append({"at": round(time.time(), 3), "where": where, "error": f"{type(exc).__name__}: {exc}"})
        log.error("fault proxy failure in %s: %s\n%s", where, exc,
                  "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "recent": list(self.recent)}


ERRORS = ProxyErrors()   # one per process: a broken proxy taints every scenario running through it


def split_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ToxicError(f"bad request body: {value!r} is not host:port")
    return host, int(port)


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a real TCP RST: SO_LINGER on with a zero timeout, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Chunk:
    """One read on its way through a link's toxics."""
    __slots__ = ("data", "release", "close_after", "held_by")

    def __init__(self, data: bytes, release: float) -> None:
        self.data, self.release, self.close_after = data, release, False
        self.held_by: list[str] = []   # the toxics delaying it: removing them releases it

    def delay(self, toxic: Toxic, seconds: float) -> None:
        self.release += seconds
        self.held_by.append(toxic.name)


class Connection:
    def __init__(self, proxy: "Proxy", index: int, client: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.proxy, self.index = proxy, index
        self.client_r, self.client_w = client
        self.server_r: Optional[asyncio.StreamReader] = None
        self.server_w: Optional[asyncio.StreamWriter] = None
        self.rolls: dict[str, bool] = {}          # toxic name -> does it apply to this connection
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.links: list[Link] = []
        self.tasks: list[asyncio.Task] = []
        self.closed = False

    def rng(self, salt: str) -> random.Random:
        # Reproducible per (seed, proxy, connection number, purpose): replaying a run replays its faults.
        return random.Random(f"{self.proxy.seed}:{self.proxy.name}:{self.index}:{salt}")

    def roll(self, toxic: Toxic) -> bool:
        if toxic.name not in self.rolls:
            self.rolls[toxic.name] = toxic.toxicity >= 1 or self.rng(f"toxicity:{toxic.name}").random() < toxic.toxicity
        return self.rolls[toxic.name]

    def later(self, toxic: Toxic, seconds: float, fn: Callable[[], None]) -> None:
        """A timer of `toxic` on this connection; it goes when the toxic goes."""
        self.timers[toxic.name] = asyncio.get_running_loop().call_later(seconds, self._guarded, fn, toxic)

    def _guarded(self, fn: Callable[[], None], toxic: Toxic) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - a proxy bug: recorded, never taken for the gateway's
            self.fail(f"{self.where()} {toxic.type} timer", exc)

    def attach(self, toxic: Toxic) -> None:
        """A toxic just came to apply to this connection."""
        if self.roll(toxic):
            toxic.attach(self)

    def detach(self, toxic: Toxic) -> None:
        timer = self.timers.pop(toxic.name, None)
        if timer:
            timer.cancel()
        self.rolls.pop(toxic.name, None)
        for link in self.links:
            link.states.pop(toxic.name, None)

    def where(self) -> str:
        return f"proxy {self.proxy.name} connection {self.index}"

    def fail(self, where: str, exc: BaseException) -> None:
        ERRORS.record(where, exc)
        self.close()

    async def run(self) -> None:
        up_host, up_port = split_hostport(self.proxy.upstream)
        _nodelay(self.client_w)
        try:
            self.server_r, self.server_w = await asyncio.wait_for(
                asyncio.open_connection(up_host.strip("[]"), up_port), timeout=CONNECT_S)
        except (OSError, asyncio.TimeoutError) as exc:
            # The upstream refused or is gone: the client sees its connection closed, as with Toxiproxy.
            log.info("%s: upstream %s: %s", self.where(), self.proxy.upstream, exc or type(exc).__name__)
            self.close()
            return
        if self.closed:   # the proxy stopped while we were connecting
            self.server_w.transport.abort()
            return
        _nodelay(self.server_w)
        log.info("%s: open", self.where())
        self.links = [Link(self, "upstream", self.client_r, self.server_w),
                      Link(self, "downstream", self.server_r, self.client_w)]
        for toxic in list(self.proxy.toxics.values()):
            self.attach(toxic)
        self.tasks = [asyncio.ensure_future(link.run()) for link in self.links]
        try:
            await asyncio.gather(*self.tasks)
        except asyncio.CancelledError:
            pass   # close() cancels the links
        finally:
            self.close()

    def close(self, reset: bool = False, abort: bool = False) -> None:
        if self.closed:
            if abort:
                self._abort()
            return
        self.closed = True
        if self.server_w is not None:   # one line per connection that was open: when and how it ended
            log.info("%s: closed%s", self.where(), " with a reset" if reset else "")
        for timer in self.timers.values():
            timer.cancel()
        for w in (self.client_w, self.server_w):
            if w is None:
                continue
            if reset:
                _rst(w)
            elif abort or w.transport.is_closing():
                w.transport.abort()
            else:
                w.close()   # orderly: what is already buffered is flushed first (bounded by stop())
        for t in self.tasks:
            if not t.done():
                t.cancel()
        self.proxy.connections.discard(self)

    def _abort(self) -> None:
        for w in (self.client_w, self.server_w):
            if w is not None:
                w.transport.abort()


class Link:
    """One direction of a connection: a reader (pump) and a writer (drain), with a bounded buffer."""

    def __init__(self, conn: Connection, stream: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.conn, self.stream, self.reader, self.writer = conn, stream, reader, writer
        self.queue: deque[Optional[Chunk]] = deque()
        self.buffered = 0                       # bytes in the queue
        self.ready = asyncio.Event()            # the queue has an item
        self.room = asyncio.Event()             # the queue is under BUFFER_BYTES
        self.room.set()
        self.states: dict[str, Any] = {}        # toxic name -> its state on this link
        self._rngs: dict[str, random.Random] = {}

    # -- what toxics use -------------------------------------------------------------------------
    def rng(self, purpose: str) -> random.Random:
        if purpose not in self._rngs:
            self._rngs[purpose] = self.conn.rng(f"{purpose}:{self.stream}")
        return self._rngs[purpose]

    def state(self, toxic: Toxic, factory: Callable[[], Any]) -> Any:
        if toxic.name not in self.states:
            self.states[toxic.name] = factory()
        return self.states[toxic.name]

    def applies(self, toxic: Toxic) -> bool:
        return self.conn.proxy.toxics.get(toxic.name) is toxic and self.conn.roll(toxic)

    def active(self) -> list[Toxic]:
        return [t for t in self.conn.proxy.toxics.values() if t.stream == self.stream and self.conn.roll(t)]

    # -- the two tasks ---------------------------------------------------------------------------
    async def run(self) -> None:
        writer_task = asyncio.ensure_future(self._guard("write", self.drain))
        self.conn.tasks.append(writer_task)   # closing the connection ends it too
        try:
            await self._guard("read", self.pump)
        finally:
            self._put(None)
            await asyncio.wait([writer_task])

    async def _guard(self, what: str, step: Callable[[], Any]) -> None:
        try:
            await step()
        except NETWORK_ERRORS:
            self.conn.close()     # the network's doing (a peer went away): an ordinary end
        except Exception as exc:  # noqa: BLE001 - a proxy bug: recorded, never taken for the gateway's
            self.conn.fail(f"{self.conn.where()} {self.stream} {what}", exc)

    def _put(self, chunk: Optional[Chunk]) -> None:
        self.queue.append(chunk)
        if chunk is not None:
            self.buffered += len(chunk.data)
            if self.buffered >= BUFFER_BYTES:
                self.room.clear()
        self.ready.set()

    async def pump(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.conn.closed:
            if not self.room.is_set():
                await self.room.wait()   # backpressure: the writer is BUFFER_BYTES behind
            data = await self.reader.read(READ_SIZE)
            if not data:
                return
            chunk = Chunk(data, loop.time())
            for t in self.active():
                t.chunk(self, chunk)
            if chunk.data or chunk.close_after:
                self._put(chunk)
            if chunk.close_after:
                return

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        toxics = self.conn.proxy.toxics
        while True:
            while not self.queue:
                self.ready.clear()
                await self.ready.wait()
            chunk = self.queue.popleft()
            if chunk is None:
                break
            self.buffered -= len(chunk.data)
            if self.buffered < BUFFER_BYTES:
                self.room.set()
            # Wait out the delay, but no longer than the toxics that caused it exist: removing a
            # latency toxic passes the bytes it was holding on at once.
            while loop.time() < chunk.release and any(n in toxics for n in chunk.held_by):
                await asyncio.sleep(min(0.02, chunk.release - loop.time()))
            await self.write(chunk.data)
            if chunk.close_after:
                self.conn.close()
                return
        # The source ended: toxics may hold the close back (timeout, slow_close) before it is passed on.
        log.info("%s: %s end of stream", self.conn.where(), self.stream)
        for t in self.active():
            if t.HOLDS_EOF and not self.conn.closed:
                await t.eof(self)
        if self.conn.closed:
            return
        try:
            if self.writer.can_write_eof():
                self.writer.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            pass

    async def write(self, data: bytes) -> None:
        senders = [t for t in self.active() if t.SENDS]
        if senders:
            await self._send(senders, data)
        elif data:   # the common case, inline: no toxic shapes the writes
            self.writer.write(data)
            await self.writer.drain()

    async def _send(self, senders: list[Toxic], data: bytes) -> None:
        """Through each writing toxic in the order they were added (slicer, then bandwidth...)."""
        if senders:
            await senders[0].send(self, data, lambda piece: self._send(senders[1:], piece))
        elif data:
            self.writer.write(data)
            await self.writer.drain()


class Proxy:
    def __init__(self, name: str, listen: str, upstream: str, seed: int = 0) -> None:
        self.name, self.listen, self.upstream, self.seed = name, listen, upstream, seed
        self.enabled = False
        self.toxics: dict[str, Toxic] = {}
        self.connections: set[Connection] = set()
        self.server: Optional[asyncio.AbstractServer] = None
        self._accepted = 0
        check_loopback(upstream, "upstream")

    async def start(self) -> None:
        if self.enabled:
            return
        host, port = split_hostport(self.listen)
        host = "127.0.0.1" if host in WILDCARD else host.strip("[]")
        check_loopback(f"{host}:{port}", "listen")
        try:
            self.server = await asyncio.start_server(self._accept, host, port, reuse_address=True, backlog=1024)
        except OSError as exc:
            raise ToxicError(f"listen {self.listen}: {exc.strerror}", status=500) from None
        bound = self.server.sockets[0].getsockname()
        self.listen = f"{'[' + bound[0] + ']' if ':' in bound[0] else bound[0]}:{bound[1]}"   # the real port for :0
        self.enabled = True

    async def stop(self) -> None:
        """Disabling closes the listener and every live connection.

        Connections are closed before waiting on the listener: from Python 3.12 on, wait_closed()
        waits for every connection the server accepted, so waiting first would wait forever. Each
        wait is bounded; a connection that has not closed by then (its peer reads nothing, so the
        orderly close cannot flush) is aborted."""
        self.enabled = False
        server, self.server = self.server, None
        if server is not None:
            server.close()   # no new connections from here on
        conns = list(self.connections)
        for conn in conns:
            conn.close()
        writers = [w for c in conns for w in (c.client_w, c.server_w) if w is not None]
        if writers:
            try:   # the orderly closes, flushed (the same on every Python version)
                await asyncio.wait_for(asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True), STOP_S)
            except asyncio.TimeoutError:
                log.warning("proxy %s: connections still open %ss after stop: aborted", self.name, STOP_S)
                for conn in conns:
                    conn.close(abort=True)
        if server is not None:
            try:
                await asyncio.wait_for(server.wait_closed(), STOP_S)
            except asyncio.TimeoutError:
                log.warning("proxy %s: the listener had not closed %ss after stop", self.name, STOP_S)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.enabled:
            # Accepted by the kernel just as the proxy was disabled: a disabled proxy has no connections.
            writer.transport.abort()
            return
        conn = Connection(self, self._accepted, (reader, writer))
        self._accepted += 1
        self.connections.add(conn)
        try:
            await conn.run()
        except asyncio.CancelledError:
            conn.close()
        except Exception as exc:  # noqa: BLE001 - a proxy bug: recorded, never taken for the gateway's
            conn.fail(f"{conn.where()} setup", exc)

    def add_toxic(self, toxic: Toxic) -> None:
        if toxic.name in self.toxics:
            raise ToxicError("toxic already exists", status=409)
        self.toxics[toxic.name] = toxic
        log.info("proxy %s: toxic %s added %s, %d live connection(s)", self.name, toxic.name,
                 toxic.to_json()["attributes"], len(self.connections))
        for conn in list(self.connections):
            try:
                conn.attach(toxic)
            except Exception as exc:  # noqa: BLE001 - a proxy bug on one connection must not fail the API call
                conn.fail(f"{conn.where()} {toxic.type} attach", exc)

    def remove_toxic(self, name: str) -> None:
        toxic = self.toxics.pop(name, None)
        if toxic is None:
            raise ToxicError("toxic not found", status=404)
        log.info("proxy %s: toxic %s removed", self.name, name)
        for conn in list(self.connections):
            conn.detach(toxic)

    def reset_toxics(self) -> None:
        for name in list(self.toxics):
            self.remove_toxic(name)

    def to_json(self) -> dict:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled,
                "toxics": [t.to_json() for t in self.toxics.values()]}


def check_loopback(hostport: str, what: str) -> None:
    host, _ = split_hostport(hostport)
    if host not in WILDCARD and not is_loopback_host(host):
        # Chaos only ever targets this machine (the house rule), whatever a caller asks for.
        raise ToxicError(f"bad request body: {what} {hostport!r} is not a loopback address")
