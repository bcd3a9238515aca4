"""The load generator's figures match a latency distribution scripted at the mock provider.

The mock provider is the target here on purpose: this tests the harness's own measuring, not a
gateway. Script: headers after 50 ms +- 10 ms (uniform), then 10 tokens 20 ms apart.

Stated tolerance: medians never below the script, and above it by at most tests/timing.py's near_ms
(a share of the figure that grows with HARNESS_TIMING_FACTOR); tails (p99) up to 35 ms above the
scripted maximum, the scheduling noise of a shared 2-core machine running other tests beside us.
"""
from __future__ import annotations

import time

import pytest

from harness.load.outcome import tally
from harness.load.run import Profile, run
from timing import near_ms


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
    assert 45 <= t["ttft"]["p50"] <= near_ms(52), t["ttft"]
    assert 55 <= t["ttft"]["p99"] <= 95, t["ttft"]
    assert t["ttft"]["count"] == n
    # Inter-token latency = the scripted 20 ms pace.
    assert 18 <= t["itl"]["p50"] <= near_ms(20), t["itl"]
    assert t["itl"]["count"] == n * 9
    # End to end = TTFT + 9 gaps of 20 ms.
    assert 220 <= t["e2e"]["p50"] <= near_ms(240), t["e2e"]
    # Locust counted each stream once, with the whole stream's time.
    assert result["locust"]["requests"] == n


def test_plain_latency_matches_the_script(scripted):
    profile = Profile(name="accuracy-plain", user="ChatUser", users=5, spawn_rate=5, duration_s=5)
    result = run(profile, scripted, "/v1/chat/completions", "m", auth=None)
    t = result["table"]["latency"]
    # A plain answer is sent after headers delay + generation (first token + 9 x 20 ms).
    assert 220 <= t["p50"] <= near_ms(240) and t["p99"] <= max(320, near_ms(260)), t


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
    assert 390 <= t["ttft"]["p50"] <= near_ms(410), t["ttft"]               # service time: the stall
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
    assert 220 <= t["e2e"]["p50"] <= near_ms(240), t["e2e"]


def test_streams_in_flight_at_the_end_finish_and_are_measured(mocks):
    """Streams of about 1.2 s, a 2 s window, two worker processes: no stream starts after the window
    and every one started is let finish and measured. Cutting them at the deadline would drop the
    slowest streams, the ones most likely still running, and flatter the tail."""
    oa = mocks["oa"]
    oa.clear_script()
    oa.script(headers_delay_ms=200, tokens=10, token_delay_ms=100)
    before = max([e["seq"] for e in oa.journal()] or [0])
    try:
        profile = Profile(name="drain", user="StreamUser", users=6, spawn_rate=6, duration_s=2)
        result = run(profile, mocks["urls"]["oa"], "/v1/chat/completions", "m", auth=None, workers=2)
    finally:
        oa.clear_script()
    served = [e for e in oa.journal(since_seq=before) if e["path"] == "/v1/chat/completions"]
    c = result["counts"]
    # Every stream the provider served was measured, and each exactly once.
    assert len(served) == c["started"] == c["requests"] == result["table"]["ttft"]["count"] > 0, (len(served), c)
    assert all(e["completed"] for e in served), [e for e in served if not e["completed"]][:2]
    assert not [k for k in c if k.startswith("error")], c
    assert result["table"]["e2e"]["max"] >= 1100, result["table"]["e2e"]


def test_a_target_that_hangs_ends_the_run_with_every_request_unfinished(mocks):
    """The target accepts the requests and never answers: the run still ends by itself (window,
    then drain), and every request is counted as never finished, none as a figure."""
    oa = mocks["oa"]
    oa.clear_script()
    oa.script(headers_delay_ms=30_000)
    try:
        profile = Profile(name="hang", user="StreamUser", users=4, spawn_rate=4, duration_s=2, drain_s=1)
        t0 = time.monotonic()
        result = run(profile, mocks["urls"]["oa"], "/v1/chat/completions", "m", auth=None)
        elapsed = time.monotonic() - t0
    finally:
        oa.clear_script()
    assert tally(result["counts"]) == {"completed": 0, "errors": 0, "unfinished": 4, "attempted": 4}, result["counts"]
    assert "ttft" not in result["table"]
    assert elapsed < 30   # bounded by the window and the drain, not by the target's 30 s


def test_max_requests_bounds_the_run(scripted):
    profile = Profile(name="budget", user="ChatUser", users=4, spawn_rate=4, duration_s=120, max_requests=12)
    t0 = time.monotonic()
    result = run(profile, scripted, "/v1/chat/completions", "m", auth=None)
    assert result["counts"]["requests"] == result["locust"]["requests"] == 12, result["counts"]
    # It ended by itself once the budget was spent, not at the 120 s window's end.
    assert time.monotonic() - t0 < 60


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
    assert 45 <= t["ttft"]["p50"] <= near_ms(52) and 18 <= t["itl"]["p50"] <= near_ms(20), (t["ttft"], t["itl"])
    assert c["tokens_usage"] == c["tokens_chunks"] == 10 * c["requests"]


def test_realtime_websocket_user_is_timed_like_a_stream(scripted):
    """RealtimeUser (websocket-client under gevent) against the mock's /v1/realtime: one session
    per user, responses back to back; TTFT from response.create, the scripted 20 ms pace between
    deltas, usage from response.done."""
    profile = Profile(name="rt", user="RealtimeUser", protocol="openai_realtime", users=4, spawn_rate=4, duration_s=5)
    result = run(profile, scripted, "/v1/realtime", "m", auth=None)
    t, c = result["table"], result["counts"]
    assert c["requests"] >= 20 and not [k for k in c if k.startswith("error")], c
    assert t["ws_connect"]["count"] == 4                      # sessions stay open across responses
    assert t["ttft"]["count"] == c["requests"] == result["locust"]["requests"]
    assert t["ttft"]["p50"] <= 15, t["ttft"]                  # the realtime mock scripts no header delay
    assert 18 <= t["itl"]["p50"] <= near_ms(20), t["itl"]
    assert c["tokens_usage"] == c["tokens_chunks"] == 10 * c["requests"] == c["tpot_from_usage"] * 10


def test_stepped_arrival_rates_send_each_step_at_its_rate(mocks):
    """Steps of 10/s for 2 s then 30/s for 2 s: 20 and 60 requests, each filed under its step."""
    mocks["oa"].clear_script()
    profile = Profile(name="steps", user="OpenStreamUser", users=20, spawn_rate=20, tokens=3,
                      steps=[{"rate_rps": 10, "duration_s": 2}, {"rate_rps": 30, "duration_s": 2}])
    assert profile.duration_s == 4
    t = run(profile, mocks["urls"]["oa"], "/v1/chat/completions", "m", auth=None)["table"]
    assert abs(t["e2e_intended@10rps"]["count"] - 20) <= 1, t["e2e_intended@10rps"]
    assert abs(t["e2e_intended@30rps"]["count"] - 60) <= 2, t["e2e_intended@30rps"]
    assert t["e2e_intended"]["count"] == t["e2e_intended@10rps"]["count"] + t["e2e_intended@30rps"]["count"]


@pytest.mark.parametrize("omit_usage", [False, True])
def test_tpot_says_which_token_count_it_used(mocks, omit_usage):
    """TPOT = (e2e - TTFT) / (tokens - 1): from the usage when the stream reports it, else from the
    chunks, and the counts say which; tpot_chunks is always there beside it."""
    from harness.load.lane import tpot_tokens
    oa = mocks["oa"]
    oa.clear_script()
    oa.script(tokens=6, token_delay_ms=20, omit_usage=omit_usage)
    try:
        profile = Profile(name="tpot", user="StreamUser", users=2, spawn_rate=2, duration_s=3)
        result = run(profile, mocks["urls"]["oa"], "/v1/chat/completions", "m", auth=None)
    finally:
        oa.clear_script()
    t, c = result["table"], result["counts"]
    assert 18 <= t["tpot"]["p50"] <= near_ms(20) and 18 <= t["tpot_chunks"]["p50"] <= near_ms(20), (t["tpot"], t["tpot_chunks"])
    used = "tpot_from_chunks" if omit_usage else "tpot_from_usage"
    assert c[used] == c["requests"] and ("tpot_from_usage" if omit_usage else "tpot_from_chunks") not in c, c
    assert ("no usage" in tpot_tokens(result)) == omit_usage and ("tokens_usage" in c) != omit_usage


def test_responses_fanout_takes_percentiles_across_the_fan(scripted):
    """The shipped responses-fanout profile's user on /v1/responses: every stream of a fan is timed,
    `fan` is the slowest of each fan and `fan_ttft` its last first token (headers 40..60 ms, then 10
    tokens 20 ms apart)."""
    from harness.load.run import load_profile
    shipped = load_profile("responses-fanout")
    assert (shipped.user, shipped.protocol, shipped.fanout) == ("FanoutStreamUser", "openai_responses", 8)
    profile = shipped.model_copy(update={"users": 2, "spawn_rate": 2, "fanout": 6, "duration_s": 3})
    result = run(profile, scripted, "/v1/responses", "m", auth=None)
    t, c = result["table"], result["counts"]
    assert not [k for k in c if k.startswith("error")] and c["requests"] == 6 * c["fans"] == t["ttft"]["count"], c
    assert t["fan"]["count"] == t["fan_ttft"]["count"] == c["fans"] >= 4, t.get("fan")
    from timing import bound
    assert t["fan"]["p95"] >= t["e2e"]["p50"] and t["fan"]["p99"] <= t["e2e"]["max"] + bound(0) * 1000, (t["fan"], t["e2e"])
    # The last first token of a fan: at least the scripted 40 ms, and no earlier than the median stream's.
    assert 40 <= t["fan_ttft"]["p50"] <= bound(0.06) * 1000 and t["fan_ttft"]["p50"] >= t["ttft"]["p50"], (
        t["fan_ttft"], t["ttft"])
    assert c["tokens_usage"] == 10 * c["requests"]


def test_requests_of_the_warm_up_run_but_leave_no_figure(scripted):
    """warmup_s: requests sent in the first second run (connections open, the first burst passes)
    and are counted as `warmup`; every figure and count after it rests on the later ones alone."""
    profile = Profile(name="warm", user="StreamUser", users=4, spawn_rate=4, duration_s=3, warmup_s=1)
    result = run(profile, scripted, "/v1/chat/completions", "m", auth=None)
    t, c = result["table"], result["counts"]
    assert c["warmup"] >= 4 and c["started"] == c["requests"] == t["ttft"]["count"] > 0, c
    assert result["locust"]["requests"] == c["warmup"] + c["requests"]   # locust's own stats see them all
    assert not [k for k in c if k.startswith("error")], c


def test_a_fan_whose_streams_never_finished_is_no_figure_and_fails_its_gate(mocks):
    """Two fans of four streams; the provider stalls the first two streams it serves after their
    first chunk, then cuts them. That fan leaves no `fan` figure (the time of the streams that did
    finish would flatter it), the counts say how many streams of how many finished, and a fan gate
    FAILs with that reason instead of passing on the one complete fan."""
    from harness.config import Gate, load
    from harness.load.lane import gates
    oa = mocks["oa"]
    oa.clear_script()
    oa.script(times=2, stall_after_chunks=1, stall_ms=300, close_after_stall=True)
    oa.script(tokens=3)
    try:
        profile = Profile(name="fan-cut", user="FanoutStreamUser", users=1, spawn_rate=1, fanout=4, duration_s=5,
                          max_requests=2)
        result = run(profile, mocks["urls"]["oa"], "/v1/chat/completions", "m", auth=None)
    finally:
        oa.clear_script()
    t, c = result["table"], result["counts"]
    assert t["fan"]["count"] == t["fan_ttft"]["count"] == 1, (t.get("fan"), t.get("fan_ttft"))
    fans = [c.get(k) for k in ("fans", "fans_incomplete", "fan_streams", "fan_streams_finished")]
    assert fans == [2, 1, 8, 6], c
    cfg = load(None)[0].model_copy(update={"gates": [Gate(metric="fan", percentile=99, max_ms=60_000)]})
    [gate] = gates(cfg, result, "fan-cut")
    assert gate["status"] == "FAIL" and "2 of 8 streams never finished" in gate["reason"], gate
