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
