"""Per-hop attribution of the time to first token: where a stream's first token spent its time.

The generator stamps each request with its tag, when it sent it and when the first token reached
it; the mock provider journals when the request arrived and when it wrote each token. All four are
CLOCK_MONOTONIC (time.monotonic_ns), one clock for every process of this machine, so per request

    in        client send          -> provider arrival       (the gateway's way in, plus the wire)
    provider  provider arrival     -> provider's first token  (the provider's own time, as scripted)
    out       provider first token -> client first token      (the gateway's way out, plus the wire)

add up to its TTFT. A gateway's overhead then no longer hides in one figure with the generator's
own lag: the direct run (no gateway) gives each hop's floor, the same wire and the same generator.
Percentiles of each hop are taken over all requests, so p99s do not add up to the TTFT's p99.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import httpx

from harness.load.metrics import Recorder

HOPS = ("in", "provider", "out")


def journal_mark(control_url: str) -> int:
    """The provider's latest journal seq: what a run journals comes after it."""
    with httpx.Client(timeout=10, trust_env=False) as c:
        r = c.get(f"{control_url.rstrip('/')}/__harness/journal", params={"last": 1})
        r.raise_for_status()
        entries = r.json()["entries"]
    return entries[-1]["seq"] if entries else 0


def journal_timings(control_url: str, since_seq: int) -> list[list[Any]]:
    with httpx.Client(timeout=30, trust_env=False) as c:
        r = c.get(f"{control_url.rstrip('/')}/__harness/timings", params={"since_seq": since_seq})
        r.raise_for_status()
        return r.json()["entries"]


def attribute(stamps: Iterable[Sequence[Any]], timings: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Joins the generator's stamps [tag, sent_ns, first_ns] with the provider's journal rows
    (harness.mocks.journal.Journal.timings) by tag; per hop an HDR table in ms, and how many
    requests were matched. A gateway that retried has several entries under one tag: the one that
    answered (the last with a token written) counts, so a failed attempt is time on the way in."""
    answered: dict[str, tuple[int, int]] = {}
    for _seq, tag, _path, arrived, first, *_ in timings:
        if tag and first is not None:
            answered[tag] = (arrived, first)
    rec = Recorder()
    matched = unmatched = impossible = 0
    for tag, sent, first_client in stamps:
        hit = answered.get(tag)
        if hit is None:   # served from a cache, or by a provider that is not this one
            unmatched += 1
            continue
        arrived, first_provider = hit
        parts = {"in": arrived - sent, "provider": first_provider - arrived, "out": first_client - first_provider}
        if min(parts.values()) < 0:
            # Not on one clock, or another request's entry: say so rather than record a wrong figure.
            impossible += 1
            continue
        matched += 1
        for hop, ns in parts.items():
            rec.record(hop, ns / 1e9)
    return {"table": rec.table(), "matched": matched, "unmatched": unmatched, "impossible": impossible}


def added(gw: dict[str, Any], direct: Optional[dict[str, Any]], columns: list[str]) -> dict[str, dict[str, float]]:
    """Per hop and percentile: the gateway run's figure minus the direct run's (its floor)."""
    out: dict[str, dict[str, float]] = {}
    if not direct:
        return out
    for hop in HOPS:
        g, d = gw["table"].get(hop), direct["table"].get(hop)
        if g and d:
            out[hop] = {c: round(g[c] - d[c], 3) for c in columns}
    return out
