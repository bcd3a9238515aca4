"""harness.checks.base.poll_until: the one bounded wait every check that waits for a change goes through.

The bounds asserted are logical (no call starts after the window, no more calls than allowed), not
timings: they hold however slow the machine is.
"""
from __future__ import annotations

import time

from harness.checks.base import poll_until


class Counter:
    def __init__(self, done_at: int = 10**9, takes_s: float = 0.0) -> None:
        self.starts: list[float] = []
        self.done_at, self.takes_s = done_at, takes_s

    def __call__(self) -> int:
        self.starts.append(time.monotonic())
        time.sleep(self.takes_s)
        return len(self.starts)


def test_a_change_already_made_costs_one_call():
    step = Counter(done_at=1)
    polled = poll_until(step, lambda n: n >= step.done_at, within_s=5, every_s=0.01)
    assert polled.met and polled.results == [1] and polled.last == 1


def test_it_stops_at_the_change_and_keeps_every_result():
    step = Counter(done_at=4)
    polled = poll_until(step, lambda n: n >= step.done_at, within_s=5, every_s=0.01)
    assert polled.met and polled.results == [1, 2, 3, 4]


def test_no_call_starts_after_the_window_and_the_wait_says_it_was_not_met():
    step = Counter(takes_s=0.02)
    t0 = time.monotonic()
    polled = poll_until(step, lambda n: False, within_s=0.3, every_s=0.05, since=t0)
    assert not polled.met and len(polled.results) >= 2
    assert all(s - t0 <= 0.3 for s in step.starts), [round(s - t0, 3) for s in step.starts]
    assert polled.waited_s >= step.starts[-1] - t0


def test_the_count_is_bounded_whatever_the_window():
    step = Counter()
    polled = poll_until(step, lambda n: False, within_s=60, every_s=0.0, max_polls=7)
    assert len(polled.results) == 7 and not polled.met
    # the default count: one call per every_s of the window, and two more, even with every_s 0
    step = Counter()
    assert len(poll_until(step, lambda n: False, within_s=0.05, every_s=0.0).results) <= 2 + 5


def test_a_window_already_over_still_makes_one_call():
    step = Counter()
    polled = poll_until(step, lambda n: False, within_s=1, every_s=0.1, since=time.monotonic() - 5)
    assert polled.results == [1] and not polled.met and polled.waited_s >= 5
