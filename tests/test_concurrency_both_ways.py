"""A concurrency limit answered fast (CM-29.x) and a silent route not retried behind the caller's back
(CM-5.2.11, CM-5.2.12), both ways: PASS against a gateway that keeps the promise, FAIL against one
with exactly that promise broken.

The gateway is tests/faulty_gateway.py: its concurrency limiter takes its cap from the promise
(promises.concurrency.max_in_flight), and one switch breaks each part of it (queues instead of
refusing, refuses late, forwards the refused request, never frees a slot); another retries a silent
route shortly after the caller got its answer. The pure judgements are tested here too.
"""
from __future__ import annotations

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


def run_claim(claim_id: str, urls: dict[str, str], breaks: set[str], **cfg_args) -> base.Verdict:
    cfg0 = harness_config("http://placeholder", claim_id, **cfg_args)
    c = cfg0.promises.concurrency
    spec = Spec(deployments={m.name: (urls[m.provider], m.upstream) for m in cfg0.models},
                fallbacks=cfg0.promises.fallbacks, keys={KEY}, breaks=breaks, retries=cfg0.promises.retries.count,
                timeout_s=timeout_s(claim_id),
                concurrency_limited=set(SLOTS) if c else set(), max_in_flight=c.max_in_flight if c else 0,
                refuse_late_s=ANSWER_S + concurrency_check.SLACK_S + 1.5)   # past the check's bound
    gw = Running(spec)
    try:
        cfg = harness_config(gw.url, claim_id, **cfg_args)
        client = GatewayClient(gw.url, "Authorization", f"Bearer {KEY}", read_s=20, request_s=30, stream_s=30)
        providers = {p.name: ProviderControl(p.name, urls[p.name]) for p in cfg.providers}
        ctx = base.CheckContext(cfg, client, providers, KEY, claim_id)
        claim = CLAIMS[claim_id]
        return base.run(ctx, claim.check, dict(claim.params))
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
    assert co.refusal(429, None, 0.2, [429], 1.0, 2) == []
    assert "queued for a slot" in co.refusal(200, None, 3.0, [429], 1.0, 2)[0]
    assert "waited for a slot" in co.refusal(None, "deadline of 5s passed", 5.0, [429], 1.0, 2)[0]
    assert co.refusal(503, None, 2.0, [429], 1.0, 2) == [
        "the request over the limit of 2 got HTTP 503, promised one of [429]",
        "the refusal came after 2.0s, promised within 1.0s: the request waited before it was refused"]
    assert co.not_forwarded(0) == [] and "1 time(s)" in co.not_forwarded(1)[0]
    assert co.served_after(200, None, 1) == []
    assert "the slots were not freed" in co.served_after(429, None, 0)[0]
    assert "expected once" in co.served_after(200, None, 2)[0]


def test_silent_route_oracle():
    assert sr.attempts([10.0, 11.5], 13.0, 1, 1, True) == []
    assert "allows 2" in sr.attempts([10.0, 11.5, 12.8], 13.0, 1, 1, True)[0]
    assert "with no retry of a timeout allows 1" in sr.attempts([10.0, 11.5], 13.0, 1, 1, False)[0]
    assert sr.attempts([10.0, 11.5, 13.4], 13.0, 1, 1, True) == []   # after the answer: after_answer's business
    assert "never reached" in sr.attempts([], 13.0, 1, 1, True)[0]
    assert sr.after_answer([10.0, 11.5], 13.0) == []
    assert "[0.4]s after the caller had its answer" in sr.after_answer([10.0, 13.4], 13.0)[0]
