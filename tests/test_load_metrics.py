"""HDR recording: exact percentiles, and exact merges across workers."""
from __future__ import annotations

import random

from harness.load.metrics import Recorder, merged


def test_percentiles_of_a_known_distribution():
    r, values = Recorder(), list(range(1, 1001))          # 1..1000 ms, uniform
    random.Random(1).shuffle(values)
    for v in values:
        r.record("latency", v / 1000)
    row = r.table()["latency"]
    assert row["count"] == 1000
    for p, want in ((50, 500), (90, 900), (99, 990), (99.9, 999)):
        assert abs(row[f"p{p:g}"] - want) <= want * 0.001 + 0.001, (p, row)
    assert abs(row["max"] - 1000) <= 1


def test_merging_workers_equals_recording_in_one_place():
    rng = random.Random(7)
    samples = [rng.lognormvariate(3, 0.8) / 1000 for _ in range(30_000)]
    whole, parts = Recorder(), [Recorder() for _ in range(3)]
    for i, s in enumerate(samples):
        whole.record("ttft", s)
        parts[i % 3].record("ttft", s)
        parts[i % 3].count("requests")
    combined = merged(p.encode() for p in parts)          # as the locust master receives them
    assert combined.table() == whole.table()
    assert combined.counts == {"requests": 30_000}


def test_load_refuses_targets_off_this_machine():
    import pytest

    from harness.config import ConfigError
    from harness.load.run import Profile, run
    profile = Profile(name="x", users=1, spawn_rate=1, duration_s=1)
    for host in ("http://10.0.0.8:4000", "https://api.example.com", "http://127.evil.example.com:80", "http://[::2]:80"):
        with pytest.raises(ConfigError, match="not a loopback address"):
            run(profile, host, "/v1/chat/completions", "m", None)
    from harness.netguard import is_loopback_url
    assert all(is_loopback_url(u) for u in ("http://127.0.0.1:4000", "http://127.8.9.10", "http://localhost:1", "http://[::1]:80"))
