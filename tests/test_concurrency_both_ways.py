"""A concurrency limit answered fast (CM-29.x) and a silent route not retried behind the caller's back
(CM-5.2.11, CM-5.2.12), both ways: PASS against a gateway that keeps the promise, FAIL against one
with exactly that promise broken.

The gateway is tests/faulty_gateway.py: its concurrency limiter takes its cap from the promise
(promises.concurrency.max_in_flight), and one switch breaks each part of it (queues instead of
refusing, refuses late, forwards the refused request, never frees a slot); another retries a silent
route shortly after the caller got its answer. The pure judgements are tested here too.
"""
from __future__ import annotations

from typing import Optional

import pytest

import timing
from faulty_gateway import Running, Spec
from harness import catalog
from harness.checks import base
from harness.checks import concurrency as concurrency_check
from harness.client.control import ProviderControl
from harness.client.http import GatewayClient
from harness.config import ProviderCfg, parse
from harness.oracles import concurrency as co
from harness.oracles import silent_route as sr
from harness.paths import MATRICES
from harness.world.mocks import start_mocks

KEY = "sk-good-key-1234567"
CHECKS = base.load_all()
CLAIMS = {c.id: c for c in catalog.load_all(known_checks=CHECKS)
          if c.id.startswith("CM-29.") or c.id in ("CM-5.2.11", "CM-5.2.12")}
ANSWER_S = timing.bound(0.25)   # the refusal's promised bound: the faulty gateway refuses at once
BOUND_S = ANSWER_S + concurrency_check.SLACK_S   # what the check allows it (and a late-freed slot)
MAX_IN_FLIGHT = 2
SLOTS = ["cc-0", "cc-1", "cc-2"]

# claim id -> [(switch that breaks the promise, the verdict it must get, what its reason must say)]
BREAKS = {
    "CM-29.1": [("concurrency_queues", "FAIL", "queued for a slot"),
                ("concurrency_refuses_late", "FAIL", "the request waited before it was refused")],
    "CM-29.2": [("concurrency_forwards_refused", "FAIL", "reached the provider 1 time(s)"),
                ("concurrency_queues", "FAIL", "reached the provider 1 time(s)")],
    "CM-29.3": [("concurrency_never_frees", "FAIL", "the slots were not freed")],
    "CM-5.2.11": [("extra_retry", "FAIL", "the silent provider got 3 attempts")],
    "CM-5.2.12": [("silent_retried_after_answer", "FAIL", "after the caller had its answer")],
}
CASES = [(cid, *case) for cid, cases in BREAKS.items() for case in cases]


def test_every_new_claim_is_tested_both_ways():
    in_file = {c.id for c in catalog.load_file(MATRICES / "claims" / "29-concurrency.yaml")}
    assert in_file == {"CM-29.1", "CM-29.2", "CM-29.3"}
    assert set(BREAKS) == set(CLAIMS) == in_file | {"CM-5.2.11", "CM-5.2.12"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    child, ports = start_mocks([ProviderCfg(name=n, kind="openai") for n in ("oa", "ob")],
                               tmp_path_factory.mktemp("mocks"))
    yield {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    child.stop(grace_s=3)


def timeout_s(claim_id: str) -> float:
    """The faulty gateway's upstream timeout: 1 s for the silent route; the concurrency claims hold
    their requests at the provider for seconds, so none there (30 s, and none promised)."""
    return 1.0 if claim_id.startswith("CM-5.2.") else 30.0


def harness_config(gateway_url: str, claim_id: str, *, concurrency: bool = True):
    where = {"to-model": "oa", "to-backup": "ob", "gpt-mock": "oa", **{m: "oa" for m in SLOTS}}
    promises = {"fallbacks": {"to-model": ["to-backup"]}, "retries": {"count": 1, "on_timeout": True}}
    if timeout_s(claim_id) < 30:
        promises.update(request_timeout_s=timeout_s(claim_id), total_deadline_s=3 * timeout_s(claim_id))
    if concurrency:
        promises["concurrency"] = {"max_in_flight": MAX_IN_FLIGHT, "statuses": [503], "answered_within_s": ANSWER_S}
    return parse({
        "target": {"name": "faulty", "url": gateway_url, "auth": {"key": KEY}, "paths": {"health": "/health"}},
        "providers": [{"name": "oa", "kind": "openai"}, {"name": "ob", "kind": "openai"}],
        "models": [{"name": m, "provider": p} for m, p in where.items()],
        "defaults": {"openai_model": "gpt-mock"},
        "roles": {"timeout": "to-model", "concurrency": SLOTS},
        "promises": promises,
    }, "faulty-gateway harness.yaml")


def run_claim(claim_id: str, urls: dict[str, str], breaks: set[str], *, deployed_at: Optional[dict[str, str]] = None,
              gateway_timeout_s: Optional[float] = None, frees_late_s: float = 0.5, **cfg_args) -> base.Verdict:
    """`deployed_at`: model -> the provider the gateway really sends it to, whatever harness.yaml says;
    `gateway_timeout_s`: the gateway's upstream timeout, whatever is promised."""
    cfg0 = harness_config("http://placeholder", claim_id, **cfg_args)
    c = cfg0.promises.concurrency
    where = {m.name: (deployed_at or {}).get(m.name, m.provider) for m in cfg0.models}
    spec = Spec(deployments={m.name: (urls[where[m.name]], m.upstream) for m in cfg0.models},
                fallbacks=cfg0.promises.fallbacks, keys={KEY}, breaks=breaks, retries=cfg0.promises.retries.count,
                timeout_s=gateway_timeout_s or timeout_s(claim_id),
                concurrency_limited=set(SLOTS) if c else set(), max_in_flight=c.max_in_flight if c else 0,
                refuse_late_s=BOUND_S + 1.5, frees_late_s=frees_late_s)   # refused past the check's bound
    gw = Running(spec)
    try:
        cfg = harness_config(gw.url, claim_id, **cfg_args)
        providers = {p.name: ProviderControl(p.name, urls[p.name]) for p in cfg.providers}
        return gw.judge(cfg, CLAIMS[claim_id], providers, KEY)
    finally:
        gw.stop()


@pytest.mark.parametrize("claim_id", sorted(BREAKS, key=catalog.id_key))
def test_claim_passes_when_the_promise_is_kept(claim_id, world):
    v = run_claim(claim_id, world, set())
    assert v.status == "PASS", (v.status, v.reason, v.evidence)


@pytest.mark.parametrize("claim_id,switch,expected,phrase", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_claim_fails_when_the_promise_is_broken(claim_id, switch, expected, phrase, world):
    v = run_claim(claim_id, world, {switch})
    assert v.status == expected, (switch, v.status, v.reason, v.evidence)
    assert phrase in v.reason, v.reason


@pytest.mark.parametrize("claim_id", ["CM-5.2.11", "CM-5.2.12"])
def test_silent_route_never_taken_is_not_judged(claim_id, world):
    """The gateway sends the silent model to another provider, which answers at once: the silent route
    was never tried, so neither its attempts nor what follows the answer is judged (it was a FAIL
    "cannot be counted" for one aspect and a PASS for the other)."""
    v = run_claim(claim_id, world, set(), deployed_at={"to-model": "ob"})
    assert v.status == "ERROR", (v.status, v.reason, v.evidence)
    assert "never reached the silent provider oa" in v.reason and "['ob']" in v.reason, v.reason


def test_silent_route_evidence_times_from_the_request(world):
    """The answer's time is the client's own measure from the request's start; the arrivals after it
    are only those after it (the retry behind the back, 0.3 s after the answer), never the ones before."""
    v = run_claim("CM-5.2.12", world, {"silent_retried_after_answer"})
    assert v.status == "FAIL", (v.status, v.reason)
    ev = v.evidence
    assert ev["answered_after_s"] <= ev["exchange"]["elapsed_s"]
    assert len(ev["silent_arrivals_s"]) == 3 and all(t >= 0 for t in ev["silent_arrivals_s"]), ev
    assert len(ev["silent_arrivals_after_answer_s"]) == 1 and ev["silent_arrivals_after_answer_s"][0] > 0, ev
    v = run_claim("CM-5.2.12", world, set())
    assert v.status == "PASS" and "2 attempt(s) before it" in v.reason, v.reason
    assert v.evidence["silent_arrivals_after_answer_s"] == [], v.evidence


@pytest.mark.parametrize("claim_id", ["CM-29.1", "CM-29.2", "CM-29.3"])
def test_held_requests_timed_out_are_not_judged(claim_id, world):
    """The gateway's upstream timeout (1 s, retried once) is shorter than the hold: the held requests
    come back 504, which says nothing of the cap (it was a FAIL "the cap is lower than promised")."""
    v = run_claim(claim_id, world, set(), gateway_timeout_s=1.0)
    assert v.status == "ERROR", (v.status, v.reason, v.evidence)
    assert "came back as upstream timeouts" in v.reason and "HTTP 504" in v.reason, v.reason


@pytest.mark.parametrize("frees_after_s,expected", [(0.5, "PASS"), (BOUND_S + 1.5, "FAIL")])
def test_slot_freed_after_the_answer(frees_after_s, expected, world):
    """A gateway that gives its slots back a moment after the answers went out (a post-response hook)
    keeps the promise if that is within the refusal's bound, and breaks it if later."""
    v = run_claim("CM-29.3", world, {"concurrency_frees_late"}, frees_late_s=frees_after_s)
    assert v.status == expected, (v.status, v.reason, v.evidence)
    if expected == "FAIL":
        assert "the slots were not freed" in v.reason and "tries over" in v.reason, v.reason
    else:
        assert len(v.evidence["after_tries"]) > 1, v.evidence   # the first try met the slot still taken


@pytest.mark.parametrize("claim_id", ["CM-29.1", "CM-5.2.11"])
def test_nothing_promised_is_unsupported(claim_id, world):
    """No cap promised, or nothing said of timed-out attempts: UNSUPPORTED with the promise to declare."""
    if claim_id == "CM-29.1":
        v = run_claim(claim_id, world, set(), concurrency=False)
        assert v.status == "UNSUPPORTED" and "promises.concurrency" in v.reason, v.reason
    else:
        cfg = harness_config("http://127.0.0.1:9", claim_id)
        cfg.promises.retries.on_timeout = None
        ctx = base.CheckContext(cfg, GatewayClient("http://127.0.0.1:9", None, None), {}, KEY, claim_id)
        v = base.run(ctx, CLAIMS[claim_id].check, dict(CLAIMS[claim_id].params))
        assert v.status == "UNSUPPORTED" and "promises.retries.on_timeout" in v.reason, v.reason
        cfg.promises.request_timeout_s = None
        v = base.run(ctx, CLAIMS["CM-5.2.12"].check, dict(CLAIMS["CM-5.2.12"].params))
        assert v.status == "UNSUPPORTED" and "promises no upstream timeout" in v.reason, v.reason


# -- the pure judgements --------------------------------------------------------------------------------
def test_concurrency_oracle():
    assert co.within_limit([(200, None), (200, None)], 2) == []
    assert "lower than the promised 2" in co.within_limit([(200, None), (429, None)], 2)[0]
    timeouts = co.within_limit([(504, None), (408, None)], 2)   # the gateway's own timeout, not the cap
    assert len(timeouts) == 1 and "2 of the 2" in timeouts[0] and "upstream timeouts" in timeouts[0], timeouts
    assert "lower than" not in timeouts[0]
    assert co.timed_out([(504, None), (200, None), (429, None), (None, "deadline of 5s passed")]) == ["HTTP 504"]
    assert co.refusal(429, None, 0.2, [429], 1.0, 2) == []
    assert "queued for a slot" in co.refusal(200, None, 3.0, [429], 1.0, 2)[0]
    assert "waited for a slot" in co.refusal(None, "deadline of 5s passed", 5.0, [429], 1.0, 2)[0]
    assert co.refusal(503, None, 2.0, [429], 1.0, 2) == [
        "the request over the limit of 2 got HTTP 503, promised one of [429]",
        "the refusal came after 2.0s, promised within 1.0s: the request waited before it was refused"]
    assert co.not_forwarded(0) == [] and "1 time(s)" in co.not_forwarded(1)[0]
    assert co.served_after(200, None, 1) == []
    assert "the slots were not freed" in co.served_after(429, None, 0)[0]
    assert "(the last of 4 tries over 2.4s)" in co.served_after(429, None, 0, 4, 2.4)[0]
    assert "expected once" in co.served_after(200, None, 2)[0]


def test_silent_route_oracle():
    assert sr.attempts([10.0, 11.5], 13.0, 1, 1, True) == []
    assert "allows 2" in sr.attempts([10.0, 11.5, 12.8], 13.0, 1, 1, True)[0]
    assert "with no retry of a timeout allows 1" in sr.attempts([10.0, 11.5], 13.0, 1, 1, False)[0]
    assert sr.attempts([10.0, 11.5, 13.4], 13.0, 1, 1, True) == []   # after the answer: after_answer's business
    assert sr.attempts([], 13.0, 1, 1, True) == []   # not put to the test: the check's NotJudged
    assert sr.after_answer([10.0, 11.5], 13.0) == []
    assert "[0.4]s after the caller had its answer" in sr.after_answer([10.0, 13.4], 13.0)[0]
