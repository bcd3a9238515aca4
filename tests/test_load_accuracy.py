"""The load generator's figures match a latency distribution scripted at the mock provider.

The mock provider is the target here on purpose: this tests the harness's own measuring, not a
gateway. Script: headers after 50 ms +- 10 ms (uniform), then 10 tokens 20 ms apart.

Stated tolerance: medians within a few ms of the script; tails (p99) up to 35 ms above the
scripted maximum, the scheduling noise of a shared 2-core machine running other tests beside us.
"""
from __future__ import annotations

import pytest

from harness.load.run import Profile, run


@pytest.fixture
def scripted(mocks):
    oa = mocks["oa"]
    oa.script(latency_ms=[50, 10], tokens=10, token_delay_ms=20)   # every request, every tag
    yield mocks["urls"]["oa"]
    oa.clear_script()


def test_stream_figures_match_the_script(scripted):
    profile = Profile(name="accuracy", user="StreamUser", users=5, spawn_rate=5, duration_s=6)
    result = run(profile, scripted, "/v1/chat/completions", "m", auth=None)
    t = result["table"]
    n = result["counts"]["requests"]
    assert n >= 30 and not [k for k in result["counts"] if k.startswith("error")], result["counts"]
    # TTFT = the scripted header delay (40..60 ms) plus a few ms of processing.
    assert 45 <= t["ttft"]["p50"] <= 60, t["ttft"]
    assert 55 <= t["ttft"]["p99"] <= 95, t["ttft"]
    assert t["ttft"]["count"] == n
    # Inter-token latency = the scripted 20 ms pace.
    assert 18 <= t["itl"]["p50"] <= 25, t["itl"]
    assert t["itl"]["count"] == n * 9
    # End to end = TTFT + 9 gaps of 20 ms.
    assert 220 <= t["e2e"]["p50"] <= 260, t["e2e"]
    # Locust counted each stream once, with the whole stream's time.
    assert result["locust"]["requests"] == n


def test_plain_latency_matches_the_script(scripted):
    profile = Profile(name="accuracy-plain", user="ChatUser", users=5, spawn_rate=5, duration_s=5)
    result = run(profile, scripted, "/v1/chat/completions", "m", auth=None)
    t = result["table"]["latency"]
    # A plain answer is sent after headers delay + generation (first token + 9 x 20 ms).
    assert 220 <= t["p50"] <= 260 and t["p99"] <= 320, t


def test_open_model_counts_from_the_intended_send_time(mocks):
    """A provider that stalls every request for 400 ms at 20 arrivals/s with a pool of 4 senders:
    senders fall behind their schedule. Measured from the actual send, TTFT looks like the stall
    alone; measured from the intended send time it keeps growing: the queueing the stall caused
    is not hidden (coordinated omission)."""
    oa = mocks["oa"]
    oa.clear_script()
    oa.script(headers_delay_ms=400, tokens=3)
    try:
        profile = Profile(name="open-co", user="OpenStreamUser", users=4, spawn_rate=4, rate_rps=20, duration_s=6)
        t = run(profile, mocks["urls"]["oa"], "/v1/chat/completions", "m", auth=None)["table"]
    finally:
        oa.clear_script()
    assert 390 <= t["ttft"]["p50"] <= 460, t["ttft"]               # service time: the stall
    assert t["ttft_intended"]["p99"] > 2 * t["ttft"]["p99"], (t["ttft_intended"], t["ttft"])
    assert t["ttft_intended"]["count"] == t["ttft"]["count"]


def test_fanout_and_worker_processes_merge_exactly(scripted):
    """Two locust worker processes: the master's merged histograms count every stream once."""
    profile = Profile(name="fan", user="FanoutStreamUser", users=4, spawn_rate=4, fanout=5, duration_s=6)
    result = run(profile, scripted, "/v1/chat/completions", "m", auth=None, workers=2)
    t, c = result["table"], result["counts"]
    assert c["requests"] == t["ttft"]["count"] == t["e2e"]["count"] == result["locust"]["requests"]
    assert c["requests"] >= 5 * c["fans"] - 5 * 4          # fans cut off by the end of the run may be partial
    assert t["fan"]["count"] == c["fans"] and t["fan"]["p50"] >= t["e2e"]["p50"]   # a fan waits for its slowest
    assert 220 <= t["e2e"]["p50"] <= 270, t["e2e"]


@pytest.mark.parametrize("protocol,path", [("anthropic_messages", "/v1/messages"), ("openai_responses", "/v1/responses")])
def test_other_streaming_protocols_are_timed_the_same(mocks, protocol, path):
    url = mocks["urls"]["an"] if protocol == "anthropic_messages" else mocks["urls"]["oa"]
    ctl = mocks["an"] if protocol == "anthropic_messages" else mocks["oa"]
    ctl.clear_script()
    ctl.script(latency_ms=[50, 10], tokens=10, token_delay_ms=20)
    try:
        profile = Profile(name=protocol, user="StreamUser", protocol=protocol, users=5, spawn_rate=5, duration_s=5)
        result = run(profile, url, path, "m", auth=None)
    finally:
        ctl.clear_script()
    t, c = result["table"], result["counts"]
    assert c["requests"] >= 20 and not [k for k in c if k.startswith("error")], c
    assert 45 <= t["ttft"]["p50"] <= 62 and 18 <= t["itl"]["p50"] <= 25, (t["ttft"], t["itl"])
    assert c["tokens_usage"] == c["tokens_chunks"] == 10 * c["requests"]
