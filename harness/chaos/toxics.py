"""Toxics: what a fault proxy does to the bytes of one direction of one connection.

One class per type, registered by name (as Toxiproxy's toxics/*.go register themselves): a new toxic
is one class here and its test. A toxic is the API's data (name, type, stream, toxicity, attributes)
plus small hooks that the proxy (harness/chaos/proxy.py) calls for each connection it applies to:

  attach(conn)            it starts to apply to a connection (a new one, or it was just added):
                          timers start here (timeout, reset_peer); conn.later() ties them to the toxic
  chunk(link, chunk)      a read came in: drop or trim `chunk.data`, `chunk.delay()` its release,
                          or set `chunk.close_after`
  send(link, data, out)   how bytes are written: `await out(piece)` for each piece, paced as it likes
  eof(link)               the source closed: awaited before the close is passed on (hold it back)

Per-connection state lives on the link: `link.state(self, factory)` (dropped when the toxic goes),
`link.rng(purpose)` (seeded, so a run replays its faults).

Attribute names and meanings follow Toxiproxy (times in ms unless named otherwise, `slicer.delay`
in microseconds, bandwidth `rate` in KB/s of 1000 bytes). `packet_loss` is ours: Toxiproxy has no
such toxic; on a TCP stream it drops whole reads, which corrupts the stream on purpose.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar

if TYPE_CHECKING:
    from harness.chaos.proxy import Chunk, Connection, Link

STREAMS = ("upstream", "downstream")

REGISTRY: dict[str, type["Toxic"]] = {}
# type -> attribute defaults (the set of known attributes, too); filled by @register
TYPES: dict[str, dict[str, float]] = {}

Out = Callable[[bytes], Awaitable[None]]


class ToxicError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def register(type_name: str, **defaults: float):
    """Makes a Toxic subclass the one for `type_name`, with these attributes and defaults."""
    def add(cls: type["Toxic"]) -> type["Toxic"]:
        if type_name in REGISTRY:
            raise ValueError(f"toxic type {type_name!r} registered twice")
        cls.TYPE, cls.DEFAULTS = type_name, dict(defaults)
        cls.SENDS = cls.send is not Toxic.send
        cls.HOLDS_EOF = cls.eof is not Toxic.eof
        REGISTRY[type_name], TYPES[type_name] = cls, cls.DEFAULTS
        return cls
    return add


class Toxic:
    TYPE: ClassVar[str] = ""
    DEFAULTS: ClassVar[dict[str, float]] = {}
    SENDS: ClassVar[bool] = False       # overrides send(): the link writes through it
    HOLDS_EOF: ClassVar[bool] = False   # overrides eof()

    def __init__(self, name: str, stream: str = "downstream", toxicity: float = 1.0,
                 attributes: dict[str, float] | None = None) -> None:
        self.name, self.stream, self.toxicity = name, stream, toxicity
        self.type = self.TYPE
        self.attributes = dict(self.DEFAULTS, **(attributes or {}))

    # -- hooks (defaults: do nothing) ----------------------------------------------------------
    def attach(self, conn: "Connection") -> None:
        pass

    def chunk(self, link: "Link", chunk: "Chunk") -> None:
        pass

    async def send(self, link: "Link", data: bytes, out: Out) -> None:
        await out(data)

    async def eof(self, link: "Link") -> None:
        pass

    # -- the API's data ------------------------------------------------------------------------
    @staticmethod
    def from_json(data: Any) -> "Toxic":
        if not isinstance(data, dict):
            raise ToxicError("bad request body: a toxic is a JSON object")
        kind = data.get("type")
        if kind not in REGISTRY:
            raise ToxicError("invalid toxic type")
        stream = data.get("stream") or "downstream"
        if stream not in STREAMS:
            raise ToxicError("stream was invalid, can be either upstream or downstream")
        toxic = REGISTRY[kind](name=data.get("name") or f"{kind}_{stream}", stream=stream,
                               toxicity=_toxicity(data.get("toxicity", 1.0)))
        toxic.update_attributes(data.get("attributes") or {})
        return toxic

    def update(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise ToxicError("bad request body: a toxic is a JSON object")
        if "toxicity" in data:
            self.toxicity = _toxicity(data["toxicity"])
        self.update_attributes(data.get("attributes") or {})

    def update_attributes(self, attrs: Any) -> None:
        if not isinstance(attrs, dict):
            raise ToxicError("bad request body: attributes must be an object")
        for key, value in attrs.items():
            if key not in self.DEFAULTS:
                continue   # Toxiproxy ignores attributes a toxic does not have
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ToxicError(f"bad request body: attribute {key} must be a non-negative number")
            self.attributes[key] = value

    def to_json(self) -> dict[str, Any]:
        attrs = {k: (int(v) if float(v).is_integer() else v) for k, v in self.attributes.items()}
        return {"name": self.name, "type": self.type, "stream": self.stream, "toxicity": self.toxicity,
                "attributes": attrs}


def _toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ToxicError("bad request body: toxicity must be a number between 0 and 1")
    return float(value)


# -- the toxics ----------------------------------------------------------------------------------
@register("latency", latency=0, jitter=0)
class Latency(Toxic):
    """Each chunk leaves `latency` ± `jitter` ms after it was read. A release time, not a sleep: the
    pipeline stays full, so latency does not throttle throughput (as in Toxiproxy)."""

    def chunk(self, link: "Link", chunk: "Chunk") -> None:
        a = self.attributes
        jitter = link.rng("jitter").uniform(-a["jitter"], a["jitter"]) if a["jitter"] else 0.0
        chunk.delay(self, max(0.0, a["latency"] + jitter) / 1000)


@register("bandwidth", rate=0)
class Bandwidth(Toxic):
    """At most `rate` KB/s, paced in 50 ms steps."""

    async def send(self, link: "Link", data: bytes, out: Out) -> None:
        if self.attributes["rate"] <= 0:
            await out(data)
            return
        rate = self.attributes["rate"] * 1000   # bytes per second
        step = max(1, int(rate / 20))
        for j in range(0, len(data), step):
            piece = data[j:j + step]
            await out(piece)
            await asyncio.sleep(len(piece) / rate)


@register("slow_close", delay=0)
class SlowClose(Toxic):
    """The close is passed on `delay` ms after the source closed."""

    async def eof(self, link: "Link") -> None:
        await asyncio.sleep(self.attributes["delay"] / 1000)


@register("timeout", timeout=0)
class Timeout(Toxic):
    """Nothing gets through, the close neither; after `timeout` ms the connection is closed
    (0: held open until the toxic is removed)."""

    def attach(self, conn: "Connection") -> None:
        if self.attributes["timeout"]:
            conn.later(self, self.attributes["timeout"] / 1000, conn.close)

    def chunk(self, link: "Link", chunk: "Chunk") -> None:
        chunk.data = b""

    async def eof(self, link: "Link") -> None:
        # No deadline of its own on purpose: this toxic *is* an unbounded hold. It ends when the
        # toxic goes, or the connection is closed (its timer, the peer, or the proxy's stop).
        while link.applies(self) and not link.conn.closed:
            await asyncio.sleep(0.02)


@register("reset_peer", timeout=0)
class ResetPeer(Toxic):
    """A TCP RST after `timeout` ms (0: at once)."""

    def attach(self, conn: "Connection") -> None:
        conn.later(self, self.attributes["timeout"] / 1000, lambda: conn.close(reset=True))


@register("slicer", average_size=0, size_variation=0, delay=0)
class Slicer(Toxic):
    """Writes in slices of `average_size` ± `size_variation` bytes, `delay` µs apart."""

    async def send(self, link: "Link", data: bytes, out: Out) -> None:
        a = self.attributes
        avg, var = int(a["average_size"]), int(a["size_variation"])
        if avg <= 0:
            await out(data)
            return
        rng, i, first = link.rng("slicer"), 0, True
        while i < len(data):
            size = max(1, avg + (rng.randint(-var, var) if var else 0))
            if not first:
                # Each slice is its own send(); with delay 0 we still yield, so slices leave one by one.
                await asyncio.sleep(a["delay"] / 1_000_000)
            await out(data[i:i + size])
            i, first = i + size, False


@register("limit_data", bytes=0)
class LimitData(Toxic):
    """Closes the connection once `bytes` have passed, counted from when the toxic came to apply
    (as in Toxiproxy: a pooled connection's earlier traffic does not count)."""

    def chunk(self, link: "Link", chunk: "Chunk") -> None:
        passed = link.state(self, lambda: [0])
        left = int(self.attributes["bytes"]) - passed[0]
        if len(chunk.data) >= left:
            chunk.data, chunk.close_after = chunk.data[:max(0, left)], True
        passed[0] += len(chunk.data)


@register("packet_loss", probability=0)
class PacketLoss(Toxic):
    """Drops each read with `probability` (ours; corrupts a TCP stream on purpose)."""

    def chunk(self, link: "Link", chunk: "Chunk") -> None:
        if link.rng("loss").random() < self.attributes["probability"]:
            chunk.data = b""
