"""The one place timing bounds in tests come from. The machines are shared and noisy (2 cores,
other jobs beside the tests), so a bound is the expected time scaled by a factor, plus a fixed
slack; HARNESS_TIMING_FACTOR widens it on a slower machine. Speed itself is measured in the
benchmarks, as ratios, never asserted here."""
from __future__ import annotations

import os

FACTOR = float(os.environ.get("HARNESS_TIMING_FACTOR", "2.0" if os.environ.get("CI") else "1.5"))
SLACK_S = 1.0


def bound(expected_s: float) -> float:
    """The most a step expected to take `expected_s` may take before a test calls it wrong."""
    return expected_s * FACTOR + SLACK_S


def near_ms(expected_ms: float) -> float:
    """The most a load-generator figure may read when a mock scripts it at `expected_ms` (TTFT,
    inter-token gaps, end to end): the generator's accuracy is what such a test asserts, so the margin
    is a share of the figure (15% per unit of FACTOR) plus 5 ms of scheduling, not bound()'s second.
    Its accuracy at scale is measured in benchmarks/load_generator.py."""
    return expected_ms * (1 + 0.15 * FACTOR) + 5
