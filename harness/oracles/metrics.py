"""Judging a gateway's Prometheus figures against what the harness measured itself (CM-23.6-23.8).

Pure functions: the text of two scrapes in, the figures and the violations out. The text is parsed
by prometheus_client's own parser, so whatever a Prometheus server reads, this reads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> tuple[list[Sample], Optional[str]]:
    """Every sample of a scrape, or none and why it is not Prometheus text (the parser's words)."""
    try:
        return [Sample(s.name, dict(s.labels), float(s.value))
                for family in text_string_to_metric_families(text) for s in family.samples], None
    except Exception as exc:   # the parser's complaints are ValueErrors, but garbage finds others
        return [], f"{type(exc).__name__}: {exc}"


def total(samples: list[Sample], name: str, label: str, value: str) -> Optional[float]:
    """The sum of the samples called `name` whose `label` is `value` (every other label summed over:
    a counter split by status or route). None when there is no such sample."""
    found = [s.value for s in samples if s.name == name and s.labels.get(label) == value]
    return sum(found) if found else None


def delta(before: Optional[float], after: Optional[float]) -> float:
    """How far a counter moved; a series that did not exist before started at 0."""
    return (after or 0.0) - (before or 0.0)


def counter_violations(what: str, moved: float, expected: int) -> list[str]:
    if moved == expected:   # NaN never is
        return []
    return [f"the {what} rose by {moved:g}, expected {expected}"]


def latency_violations(sum_delta: float, count_delta: float, expected_count: int, harness_mean_s: float,
                       unit: str, tolerance_ms: float, tolerance_ratio: float) -> tuple[list[str], Optional[float]]:
    """The violations of the latency figure, and its mean in seconds (None when it observed nothing):
    it must have observed exactly the requests it promises to, and their mean must be within
    `tolerance_ms` plus `tolerance_ratio` of the harness's own mean."""
    out = []
    if count_delta != expected_count:
        out.append(f"the latency figure observed {count_delta:g} requests, expected {expected_count}")
    if count_delta <= 0:
        return out, None
    mean_s = sum_delta / count_delta / (1000.0 if unit == "ms" else 1.0)
    allowed_s = tolerance_ms / 1000.0 + tolerance_ratio * harness_mean_s
    if not math.isfinite(mean_s):
        out.append(f"its mean is {mean_s} (its sum moved by {sum_delta})")
    elif abs(mean_s - harness_mean_s) > allowed_s:
        out.append(f"its mean is {mean_s * 1000:.1f} ms, the harness measured {harness_mean_s * 1000:.1f} ms "
                   f"(allowed: {allowed_s * 1000:.1f} ms either way)")
    return out, mean_s
