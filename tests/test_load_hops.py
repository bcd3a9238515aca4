"""Per-hop attribution: the mock journals arrival and token times on the generator's clock, and the
load lane splits each stream's TTFT into the way in, the provider's own time and the way out.

Stated tolerance: a relay gateway that adds 1.5 s on one side sees at least 1.5 s on that hop (it
cannot be less) and at most tests/timing.py's bound(1.5 s); the other side stays under bound(0),
below the delay, so the delay is not put on the wrong hop.
"""
from __future__ import annotations

import time

import httpx
import pytest
from relay_gateway import Relay
from timing import bound

from harness.config import load
from harness.load.hops import added, attribute, journal_mark, journal_timings
from harness.load.lane import COLUMNS, measure
from harness.load.run import Profile
from harness.world.world import WorldInfo

DELAY_MS = 1500


def test_attribution_splits_each_request_and_sums_to_its_ttft():
    ms = 1_000_000
    stamps = [["a", 0, 30 * ms], ["b", 100 * ms, 160 * ms], ["cached", 0, 5 * ms], ["odd", 50 * ms, 60 * ms]]
    timings = [[1, "a", "/v1/chat/completions", 5 * ms, 25 * ms, 40 * ms, 3, True],
               # b: the gateway's first attempt failed (no token written), the retry answered
               [2, "b", "/v1/chat/completions", 101 * ms, None, None, 0, True],
               [3, "b", "/v1/chat/completions", 140 * ms, 150 * ms, 155 * ms, 3, True],
               [4, "odd", "/v1/chat/completions", 70 * ms, 80 * ms, 90 * ms, 3, True]]   # after the client saw it
    got = attribute(stamps, timings)
    assert (got["matched"], got["unmatched"], got["impossible"]) == (2, 1, 1)
    t = got["table"]
    assert t["in"]["count"] == t["provider"]["count"] == t["out"]["count"] == 2
    hdr = pytest.approx   # HDR histograms keep 3 significant digits
    assert (t["in"]["max"], t["provider"]["max"], t["out"]["max"]) == hdr((40, 20, 10), rel=2e-3)   # b: the retry is time in
    assert (t["in"]["p50"], t["provider"]["p50"], t["out"]["p50"]) == hdr((5, 10, 5), rel=2e-3)     # a: 5 + 20 + 5, b: 40 + 10 + 10
    floor = {"table": {h: {c: 1.0 for c in COLUMNS} for h in ("in", "provider", "out")}}
    assert added(got, floor, COLUMNS)["in"]["max"] == hdr(39, rel=2e-3) and added(got, None, COLUMNS) == {}


def test_the_journal_times_arrival_and_each_token_on_the_monotonic_clock(mocks):
    oa = mocks["oa"]
    oa.clear_script()
    oa.script(tag="hops-1", first_token_delay_ms=50, token_delay_ms=20, tokens=4)
    url = mocks["urls"]["oa"]
    mark = journal_mark(url)
    sent = time.monotonic_ns()
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x [h:hops-1]"}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=10) as r:
        r.read()
    done = time.monotonic_ns()
    oa.clear_script()
    rows = [row for row in journal_timings(url, mark) if row[1] == "hops-1"]
    assert len(rows) == 1, rows
    _seq, _tag, path, arrived, first, last, n, completed = rows[0]
    assert path == "/v1/chat/completions" and n == 4 and completed
    assert sent <= arrived <= first <= last <= done                       # one clock with this process
    assert first - arrived >= 50e6 and last - first >= 3 * 20e6 * 0.9     # the scripted delays, at the provider


def _world(cfg, gateway_url, mocks):
    providers = {p.name: {"name": p.name, "kind": p.kind, "url": mocks["urls"]["oa"],
                          "control_url": mocks["urls"]["oa"]} for p in cfg.providers}
    return type("W", (), {"info": WorldInfo(config_path="", gateway_url=gateway_url, gateway_key=None,
                                            providers=providers, started_at=0, gateway_started_by_harness=False)})()


@pytest.mark.parametrize("side", ["out", "in"])
def test_a_gateway_delay_is_attributed_to_its_side(mocks, side):
    """The relay holds the first chunk (out) or the request (in) for 1.5 s: the lane's per-hop
    table puts it on that side, and the direct run (no gateway) is the floor it is measured from."""
    cfg = load(None)[0]
    profile = Profile(name="hops", user="StreamUser", users=4, spawn_rate=4, duration_s=3, tokens=5, token_delay_ms=10)
    delays = {"in_delay_ms": DELAY_MS} if side == "in" else {"out_delay_ms": DELAY_MS}
    with Relay(mocks["urls"]["oa"], **delays) as relay:
        result = measure(cfg, _world(cfg, relay.url, mocks), profile, None, progress=False)
    hops = result["hops"]
    gw, direct = hops["gateway"], hops["direct"]
    n = result["gateway"]["table"]["ttft"]["count"]
    assert gw["matched"] == n >= 4 and gw["unmatched"] == gw["impossible"] == 0, gw
    assert direct["matched"] == result["direct"]["table"]["ttft"]["count"] > 0, direct
    other = "in" if side == "out" else "out"
    t = gw["table"]
    assert DELAY_MS <= t[side]["p50"] <= bound(DELAY_MS / 1000) * 1000, t[side]
    assert t[other]["p99"] <= bound(0) * 1000 < DELAY_MS, t[other]
    assert t["provider"]["p50"] <= bound(0) * 1000, t["provider"]     # the provider streams at once
    assert DELAY_MS - bound(0) * 1000 <= hops["added"][side]["p50"] <= bound(DELAY_MS / 1000) * 1000, hops["added"]
    # The hops of one request add up to its TTFT, so their medians come close to the TTFT's.
    ttft = result["gateway"]["table"]["ttft"]["p50"]
    assert abs(sum(t[h]["p50"] for h in ("in", "provider", "out")) - ttft) <= bound(0) * 1000, (t, ttft)
    assert "stamps" not in result["gateway"]["hdr"]   # joined and dropped: load.json stays small
