"""One TCP fault proxy: listens, connects each client to the upstream, and applies its toxics.

Each connection has two links (upstream: client to server; downstream: server to client). A link
reads in large chunks and hands them to a writer task with a release time, so a latency toxic
delays bytes without throttling throughput (the pipeline stays full), the way Toxiproxy does.
Toxics are read per chunk, so adding or removing one takes effect on a live connection at once.
"""
from __future__ import annotations

import asyncio
import random
import socket
import struct
from typing import Optional

from harness.chaos.toxics import Toxic, ToxicError
from harness.netguard import is_loopback_host

READ_SIZE = 256 * 1024
WILDCARD = {"", "0.0.0.0", "[::]", "::"}


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


class Connection:
    def __init__(self, proxy: "Proxy", index: int, client: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.proxy, self.index = proxy, index
        self.client_r, self.client_w = client
        self.server_r: Optional[asyncio.StreamReader] = None
        self.server_w: Optional[asyncio.StreamWriter] = None
        self.rolls: dict[str, bool] = {}          # toxic name -> does it apply to this connection
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.tasks: list[asyncio.Task] = []
        self.closed = False
        # Bytes through each limit_data toxic on this connection, counted from when the toxic came to
        # apply (as Toxiproxy does): a pooled connection's earlier traffic does not count.
        self.limited: dict[tuple[str, str], int] = {}

    def rng(self, salt: str) -> random.Random:
        # Reproducible per (seed, proxy, connection number, purpose): replaying a run replays its faults.
        return random.Random(f"{self.proxy.seed}:{self.proxy.name}:{self.index}:{salt}")

    def roll(self, toxic: Toxic) -> bool:
        if toxic.name not in self.rolls:
            self.rolls[toxic.name] = toxic.toxicity >= 1 or self.rng(f"toxicity:{toxic.name}").random() < toxic.toxicity
        return self.rolls[toxic.name]

    def active(self, stream: str) -> list[Toxic]:
        return [t for t in self.proxy.toxics.values() if t.stream == stream and self.roll(t)]

    def attach(self, toxic: Toxic) -> None:
        """A toxic just applies to this connection: timers of timeout and reset_peer start now."""
        if not self.roll(toxic) or toxic.type not in ("timeout", "reset_peer"):
            return
        ms = toxic.attributes["timeout"]
        if toxic.type == "timeout" and ms == 0:
            return   # hold the connection open, dropping data, until the toxic goes
        loop = asyncio.get_running_loop()
        reset = toxic.type == "reset_peer"
        self.timers[toxic.name] = loop.call_later(ms / 1000, lambda: self.close(reset=reset))

    def detach(self, toxic: Toxic) -> None:
        timer = self.timers.pop(toxic.name, None)
        if timer:
            timer.cancel()
        self.rolls.pop(toxic.name, None)
        for stream in ("upstream", "downstream"):
            self.limited.pop((toxic.name, stream), None)

    async def run(self) -> None:
        up_host, up_port = split_hostport(self.proxy.upstream)
        _nodelay(self.client_w)
        try:
            self.server_r, self.server_w = await asyncio.wait_for(
                asyncio.open_connection(up_host.strip("[]"), up_port), timeout=10)
        except (OSError, asyncio.TimeoutError):
            self.close()
            return
        _nodelay(self.server_w)
        for toxic in list(self.proxy.toxics.values()):
            self.attach(toxic)
        up = Link(self, "upstream", self.client_r, self.server_w)
        down = Link(self, "downstream", self.server_r, self.client_w)
        self.tasks = [asyncio.ensure_future(up.run()), asyncio.ensure_future(down.run())]
        try:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        finally:
            self.close()

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in self.timers.values():
            timer.cancel()
        for w in (self.client_w, self.server_w):
            if w is None:
                continue
            if reset:
                _rst(w)
            else:
                w.transport.abort() if w.transport.is_closing() else w.close()
        for t in self.tasks:
            if not t.done():
                t.cancel()
        self.proxy.connections.discard(self)


class Link:
    def __init__(self, conn: Connection, stream: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.conn, self.stream, self.reader, self.writer = conn, stream, reader, writer
        self.queue: asyncio.Queue = asyncio.Queue()
        self.jitter = conn.rng(f"jitter:{stream}")
        self.loss = conn.rng(f"loss:{stream}")
        self.slices = conn.rng(f"slicer:{stream}")

    async def run(self) -> None:
        writer_task = asyncio.ensure_future(self.drain())
        try:
            await self.pump()
        finally:
            await self.queue.put(None)
            try:
                await writer_task
            except asyncio.CancelledError:
                pass

    async def pump(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.conn.closed:
            try:
                data = await self.reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                return
            if not data:
                return
            release = loop.time()
            delayed_by: list[str] = []   # latency toxics holding this chunk back
            close_after = False
            limits: list[tuple[str, str]] = []
            for t in self.conn.active(self.stream):
                a = t.attributes
                if t.type == "timeout":
                    data = b""          # nothing gets through while a timeout toxic is active
                elif t.type == "packet_loss" and self.loss.random() < a["probability"]:
                    data = b""
                elif t.type == "limit_data":
                    key = (t.name, self.stream)
                    limits.append(key)
                    left = int(a["bytes"]) - self.conn.limited.get(key, 0)
                    if len(data) >= left:
                        data, close_after = data[:max(0, left)], True
                elif t.type == "latency":
                    delay = a["latency"] + (self.jitter.uniform(-a["jitter"], a["jitter"]) if a["jitter"] else 0)
                    release += max(0.0, delay) / 1000
                    delayed_by.append(t.name)
            for key in limits:
                self.conn.limited[key] = self.conn.limited.get(key, 0) + len(data)
            if data or close_after:
                await self.queue.put((release, data, close_after, delayed_by))
            if close_after:
                return

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.queue.get()
            if item is None:
                break
            release, data, close_after, delayed_by = item
            # Wait out the delay, but no longer than the toxics that caused it exist: removing a
            # latency toxic passes the bytes it was holding on at once.
            while loop.time() < release and any(n in self.conn.proxy.toxics for n in delayed_by):
                await asyncio.sleep(min(0.02, release - loop.time()))
            try:
                await self.write(data)
            except (ConnectionError, OSError):
                self.conn.close()
                return
            if close_after:
                self.conn.close()
                return
        # The source ended. A timeout toxic swallows the close too, until its timer closes the
        # connection (or, with timeout 0, until the toxic is removed).
        while not self.conn.closed and any(t.type == "timeout" for t in self.conn.active(self.stream)):
            await asyncio.sleep(0.02)
        if self.conn.closed:
            return
        # Pass the close on, after a slow_close delay if one is active.
        delays = [t.attributes["delay"] for t in self.conn.active(self.stream) if t.type == "slow_close"]
        if delays:
            await asyncio.sleep(max(delays) / 1000)
        try:
            if self.writer.can_write_eof():
                self.writer.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            pass

    async def write(self, data: bytes) -> None:
        toxics = self.conn.active(self.stream)
        slicer = next((t for t in toxics if t.type == "slicer"), None)
        bandwidth = next((t for t in toxics if t.type == "bandwidth" and t.attributes["rate"] > 0), None)
        pieces = [data]
        if slicer and slicer.attributes["average_size"] > 0:
            pieces, i = [], 0
            avg, var = int(slicer.attributes["average_size"]), int(slicer.attributes["size_variation"])
            while i < len(data):
                size = max(1, avg + (self.slices.randint(-var, var) if var else 0))
                pieces.append(data[i:i + size])
                i += size
        for n, piece in enumerate(pieces):
            if slicer and n:
                # Each slice is its own send(); with delay 0 we still yield, so slices leave one by one.
                await asyncio.sleep(slicer.attributes["delay"] / 1_000_000)
            if bandwidth:
                rate = bandwidth.attributes["rate"] * 1000   # bytes per second
                step = max(1, int(rate / 20))                # pace in 50 ms steps
                for j in range(0, len(piece), step):
                    self.writer.write(piece[j:j + step])
                    await self.writer.drain()
                    await asyncio.sleep(len(piece[j:j + step]) / rate)
            else:
                self.writer.write(piece)
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
        """Disabling closes the listener and every live connection."""
        self.enabled = False
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for conn in list(self.connections):
            conn.close()
        self.enabled = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.enabled:
            # Accepted by the kernel just as the proxy was disabled: a disabled proxy has no connections.
            writer.transport.abort()
            return
        conn = Connection(self, self._accepted, (reader, writer))
        self._accepted += 1
        self.connections.add(conn)
        await conn.run()

    def add_toxic(self, toxic: Toxic) -> None:
        if toxic.name in self.toxics:
            raise ToxicError("toxic already exists", status=409)
        self.toxics[toxic.name] = toxic
        for conn in list(self.connections):
            conn.attach(toxic)

    def remove_toxic(self, name: str) -> None:
        toxic = self.toxics.pop(name, None)
        if toxic is None:
            raise ToxicError("toxic not found", status=404)
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
