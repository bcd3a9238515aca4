"""Latency figures you can gate a release on: HDR histograms (microsecond resolution, 3 significant
digits), not locust's rounded buckets, encoded so that workers' histograms merge exactly."""
from __future__ import annotations

import time
from typing import Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3   # 1 us .. 1 hour
PERCENTILES = (50, 90, 95, 99, 99.9)
MAX_SAMPLES = 20_000                                   # (time, TTFT) points kept per process for the plot
MAX_STAMPS = 200_000   # (tag, sent, first token) per request for per-hop attribution: ~10 MB of JSON at most


class Recorder:
    def __init__(self) -> None:
        self.h: dict[str, HdrHistogram] = {}
        self.counts: dict[str, int] = {}
        self.samples: list[tuple[float, float]] = []   # (wall time, seconds): latency over time
        # Per request: its tag, when it was sent and when its first token came, on CLOCK_MONOTONIC
        # in ns (the mock providers' journal uses the same clock): harness.load.hops joins them.
        self.stamps: list[tuple[str, int, int]] = []

    def stamp(self, tag: str, sent_ns: int, first_ns: int) -> None:
        if len(self.stamps) < MAX_STAMPS:
            self.stamps.append((tag, sent_ns, first_ns))

    def sample(self, seconds: float) -> None:
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append((time.time(), seconds))

    def record(self, metric: str, seconds: float) -> None:
        h = self.h.get(metric)
        if h is None:
            h = self.h[metric] = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
        h.record_value(max(LOWEST_US, min(HIGHEST_US, int(seconds * 1_000_000))))

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def encode(self) -> dict[str, object]:
        return {"histograms": {k: h.encode().decode() for k, h in self.h.items()}, "counts": dict(self.counts),
                "samples": list(self.samples), "stamps": list(self.stamps)}

    def merge(self, encoded: dict[str, object]) -> None:
        for k, blob in (encoded.get("histograms") or {}).items():   # type: ignore[union-attr]
            other = HdrHistogram.decode(blob.encode() if isinstance(blob, str) else blob)
            if k in self.h:
                self.h[k].add(other)
            else:
                self.h[k] = other
        for k, n in (encoded.get("counts") or {}).items():          # type: ignore[union-attr]
            self.count(k, n)
        room = MAX_SAMPLES - len(self.samples)
        self.samples += [tuple(x) for x in (encoded.get("samples") or [])[:max(0, room)]]  # type: ignore[misc]
        room = MAX_STAMPS - len(self.stamps)
        self.stamps += [tuple(x) for x in (encoded.get("stamps") or [])[:max(0, room)]]  # type: ignore[misc]

    def table(self) -> dict[str, dict[str, float]]:
        """Per metric: count, p50 ... p99.9, max and mean, in milliseconds."""
        out = {}
        for k, h in self.h.items():
            row: dict[str, float] = {"count": h.get_total_count()}
            for p in PERCENTILES:
                row[f"p{p:g}"] = h.get_value_at_percentile(p) / 1000
            row["max"] = h.get_max_value() / 1000
            row["mean"] = h.get_mean_value() / 1000
            out[k] = row
        return out


class Discard(Recorder):
    """Takes figures and keeps none: where a warm-up request records. A fresh Recorder per request
    made five HDR histograms (23,552 counters, 0.3 ms each) for every warm-up stream: a quarter of a
    generator's CPU at 1,000 streams, spent as the first measured requests went out."""

    def record(self, metric: str, seconds: float) -> None:
        pass

    def count(self, name: str, n: int = 1) -> None:
        pass

    def sample(self, seconds: float) -> None:
        pass

    def stamp(self, tag: str, sent_ns: int, first_ns: int) -> None:
        pass


def merged(blobs: Iterable[dict[str, object]]) -> Recorder:
    r = Recorder()
    for b in blobs:
        r.merge(b)
    return r

