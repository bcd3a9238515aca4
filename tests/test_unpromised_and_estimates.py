"""Two verdicts a promise decides (issue 15): a refusal header nobody promised is UNSUPPORTED, never a
vacuous PASS ("carries []"); and a usage of zeros for a prompt and an answer with text is no estimate,
although its totals add up (LiteLLM's plain answers, CM-14.1). The gateways on both sides are in
tests/test_resilience_both_ways.py (an estimate passes, no usage fails) and tests/test_e2e_litellm.py."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.checks.access import _no_estimate, enforced
from harness.checks.base import Unsupported
from harness.config import RateLimit


class Sent(Exception):
    pass


def _ctx(rate_limit: RateLimit) -> SimpleNamespace:
    def tag() -> str:
        raise Sent("the check went on to send requests")
    return SimpleNamespace(cfg=SimpleNamespace(promises=SimpleNamespace(rate_limit=rate_limit)),
                           slot=lambda role, i: f"rl-{i}", tag=tag)


def test_no_header_promised_on_the_refusal_is_unsupported():
    with pytest.raises(Unsupported, match="promises no header on its rate-limit refusal"):
        enforced(_ctx(RateLimit(rpm=3, headers=[])), aspect="headers", slot=2)


def test_a_promised_header_is_checked_and_other_aspects_run_without_one():
    with pytest.raises(Sent):
        enforced(_ctx(RateLimit(rpm=3, headers=["retry-after"])), aspect="headers", slot=2)
    with pytest.raises(Sent):
        enforced(_ctx(RateLimit(rpm=3, headers=[])), aspect="over", slot=1)


def test_zeros_are_not_an_estimate():
    (why,) = _no_estimate({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    assert "zeros, not an estimate" in why and "0 prompt and 0 completion" in why
    assert _no_estimate({"prompt_tokens": None, "completion_tokens": None})   # nulls are no estimate either


@pytest.mark.parametrize("usage", [{"prompt_tokens": 5, "completion_tokens": 12, "total_tokens": 17},
                                   {"prompt_tokens": 7, "completion_tokens": 0, "total_tokens": 7},
                                   None, "not a dict"])
def test_an_estimate_or_no_usage_is_left_to_the_other_oracles(usage):
    # An estimate passes; a missing or malformed usage is usage_totals' finding, not this one's.
    assert _no_estimate(usage) == []
