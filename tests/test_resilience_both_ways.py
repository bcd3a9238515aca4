"""Every resilience claim, both ways: PASS against a gateway that keeps the promise, and FAIL (or
SAFE, where the promise is broken cleanly) against one with exactly that promise broken.

The gateway is tests/faulty_gateway.py, test equipment with one switch per promise.
"""
from __future__ import annotations

import pytest

from faulty_gateway import Running, Spec
from harness import catalog
from harness.checks import base
from harness.client.control import ProviderControl
from harness.config import parse
from harness.world.mocks import start_mocks
from harness.world.processes import RefusingPort
from harness.config import ProviderCfg

KEY, REVOKED, EXPIRED = "sk-good-key-1234567", "sk-revoked-key-1234567", "sk-expired-key-1234567"

# claim id -> (break switch, verdict expected with it)
BREAKS = {
    "CM-5.1.1": ("failover_on_client_errors", "FAIL"), "CM-5.1.2": ("failover_on_client_errors", "FAIL"),
    "CM-5.1.3": ("failover_on_client_errors", "FAIL"), "CM-5.1.4": ("failover_on_client_errors", "FAIL"),
    "CM-5.1.5": ("failover_on_client_errors", "FAIL"),
    **{f"CM-5.1.{i}": ("failover_garbage", "FAIL") for i in range(6, 14)},
    "CM-5.1.14": ("failover_leaks_error", "FAIL"), "CM-5.1.15": ("chain_reversed", "FAIL"),
    "CM-5.1.16": ("failover_garbage", "FAIL"), "CM-5.1.17": ("double_backup", "FAIL"),
    "CM-5.1.18": ("hedge", "FAIL"),
    "CM-5.5.1": ("model_names_primary", "FAIL"), "CM-5.5.2": ("failover_usage_doubled", "FAIL"),
    "CM-5.5.3": ("metadata_wrong", "FAIL"),
    "CM-5.2.1": ("extra_retry", "FAIL"), "CM-5.2.2": ("extra_retry", "FAIL"), "CM-5.2.3": ("extra_retry", "FAIL"),
    "CM-5.2.4": ("retry_client_errors", "FAIL"), "CM-5.2.5": ("retry_client_errors", "FAIL"),
    "CM-5.2.6": ("no_retry", "FAIL"), "CM-5.2.7": ("no_backoff", "FAIL"), "CM-5.2.8": ("ignore_retry_after", "FAIL"),
    "CM-5.2.9": ("hammer", "FAIL"), "CM-5.2.10": ("no_timeout", "FAIL"),
    "CM-5.3.1": ("breaker_opens_early", "FAIL"), "CM-5.3.2": ("breaker_never_opens", "FAIL"),
    "CM-5.3.3": ("breaker_never_closes", "FAIL"), "CM-5.3.4": ("breaker_never_closes", "FAIL"),
    "CM-5.3.5": ("breaker_no_half_open", "FAIL"), "CM-5.3.6": ("breaker_global", "FAIL"),
    "CM-5.3.7": ("breaker_window_count", "FAIL"), "CM-5.3.8": ("breaker_never_opens", "FAIL"),
    "CM-5.3.9": ("cooling_refusal_wrong", "FAIL"), "CM-5.3.10": ("cooling_refusal_wrong", "FAIL"),
    "CM-5.4.1": ("no_timeout", "FAIL"), "CM-5.4.2": ("timeout_too_short", "FAIL"),
    "CM-5.4.3": ("stream_fake_complete", "FAIL"), "CM-5.4.4": ("stream_fake_complete", "FAIL"),
    "CM-1.1": ("auth_missing_passes", "FAIL"), "CM-1.2": ("auth_any_key", "FAIL"),
    "CM-1.3": ("auth_missing_passes", "FAIL"), "CM-1.4": ("revoked_accepted", "FAIL"),
    "CM-1.5": ("expired_accepted", "FAIL"),
    "CM-2.1": ("rate_limit_early", "FAIL"), "CM-2.2": ("no_rate_limit", "FAIL"),
    "CM-2.3": ("no_ratelimit_headers", "FAIL"), "CM-2.4": ("rate_limit_after_forward", "FAIL"),
    "CM-2.5": ("rate_limit_never_resets", "FAIL"),
    "CM-8.1": ("no_cache", "FAIL"), "CM-8.2": ("cache_ignores_model", "FAIL"),
    "CM-8.3": ("cache_ignores_messages", "FAIL"), "CM-8.4": ("cache_ignores_temperature", "FAIL"),
    "CM-8.5": ("cache_never_expires", "FAIL"), "CM-8.6": ("cache_stream_mismatch", "FAIL"),
    "CM-6.4.1": ("idempotency_ignored", "FAIL"), "CM-6.4.2": ("idempotency_ignores_key", "FAIL"),
    "CM-14.1": ("no_usage_estimate", "FAIL"), "CM-14.2": ("no_usage_estimate", "FAIL"),
}
from test_growth_both_ways import CLAIMS as GROWTH  # noqa: E402 - issue 15's claims, tested both ways there
from test_concurrency_both_ways import CLAIMS as LIMITS  # noqa: E402 - concurrency limit, silent route: both ways there
CLAIMS = {c.id: c for c in catalog.load(known_checks=set(base.load_all()))
          if c.lane == "Resilience" and c.id not in GROWTH and c.id not in LIMITS}
BREAKERS = [f"brk-{i}" for i in range(11)]
RATE = [f"rl-{i}" for i in range(5)]


def test_every_resilience_claim_is_tested_both_ways():
    assert len(CLAIMS) >= 60
    assert set(BREAKS) == set(CLAIMS)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    child, ports = start_mocks([ProviderCfg(name=n, kind="openai") for n in ("oa", "ob", "oc")],
                               tmp_path_factory.mktemp("mocks"))
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    dead = RefusingPort()   # held: a port merely free now could be bound by a later server, and answer
    urls["dead"] = f"http://127.0.0.1:{dead.port}"
    yield urls
    child.stop(grace_s=3)
    dead.close()


def harness_config(gateway_url: str, urls: dict[str, str]):
    where = {"fo-primary": "oa", "fo-secondary": "ob", "fo-tertiary": "oc", "fo-refused": "dead",
             "rt-model": "oa", "rt-backup": "ob", "to-model": "oa", "to-backup": "ob", "brk-backup": "ob",
             "cache-model": "oa", "cache-other": "ob", "gpt-mock": "oa",
             **{b: "oa" for b in BREAKERS}, **{r: "oa" for r in RATE}}
    return parse({
        "target": {"name": "faulty", "url": gateway_url, "auth": {"key": KEY}, "paths": {"health": "/health"}},
        "providers": [{"name": "oa", "kind": "openai"}, {"name": "ob", "kind": "openai"},
                      {"name": "oc", "kind": "openai"}, {"name": "dead", "kind": "openai", "refuses_connections": True}],
        "models": [{"name": m, "provider": p} for m, p in where.items()],
        "defaults": {"openai_model": "gpt-mock"},
        "roles": {"failover": "fo-primary", "failover_refused": "fo-refused", "retry": "rt-model",
                  "timeout": "to-model", "breaker": BREAKERS, "cache": "cache-model", "cache_other": "cache-other",
                  "rate_limit": RATE},
        "promises": {
            "fallbacks": {"fo-primary": ["fo-secondary", "fo-tertiary"], "fo-refused": ["fo-secondary"],
                          "rt-model": ["rt-backup"], "to-model": ["to-backup"], **{b: ["brk-backup"] for b in BREAKERS}},
            "failover": {"preset": "5xx-and-429", "reports_model": "answering", "metadata_header": "x-gw-api-base"},
            "retries": {"count": 1, "backoff_min_s": 0.2, "honors_retry_after": True},
            "request_timeout_s": 1, "stream_timeout_s": 1, "total_deadline_s": 3,
            "breaker": {"opens_after": 3, "cooldown_s": 1.5, "half_open": True, "counts": "consecutive",
                        "refusal": {"status": 429, "headers": ["retry-after"]}},
            "cache": {"ttl_s": 1}, "rate_limit": {"rpm": 3, "window_s": 2, "headers": ["retry-after"]},
            "idempotency_header": "Idempotency-Key",
            "auth": {"revoked_key_env": "HARNESS_TEST_REVOKED_KEY", "expired_key_env": "HARNESS_TEST_EXPIRED_KEY"},
            "usage_estimated_when_missing": True,
        },
    }, "faulty-gateway harness.yaml")


def run_claim(claim_id: str, urls: dict[str, str], breaks: set[str], monkeypatch) -> base.Verdict:
    monkeypatch.setenv("HARNESS_TEST_REVOKED_KEY", REVOKED)
    monkeypatch.setenv("HARNESS_TEST_EXPIRED_KEY", EXPIRED)
    cfg0 = harness_config("http://placeholder", urls)
    deployments = {m.name: (urls[m.provider], m.upstream) for m in cfg0.models}
    spec = Spec(deployments=deployments, fallbacks=cfg0.promises.fallbacks, keys={KEY}, revoked={REVOKED},
                expired={EXPIRED}, rate_limited=set(RATE), cached={"cache-model", "cache-other"}, breaks=breaks)
    gw = Running(spec)
    try:
        cfg = harness_config(gw.url, urls)
        providers = {p.name: ProviderControl(p.name, urls[p.name], refuses=p.refuses_connections) for p in cfg.providers}
        return gw.judge(cfg, CLAIMS[claim_id], providers, KEY)
    finally:
        gw.stop()


@pytest.mark.parametrize("claim_id", sorted(BREAKS, key=catalog.id_key))
def test_claim_passes_when_the_promise_is_kept(claim_id, world, monkeypatch):
    v = run_claim(claim_id, world, set(), monkeypatch)
    assert v.status == "PASS", (v.status, v.reason, v.evidence)


@pytest.mark.parametrize("claim_id", sorted(BREAKS, key=catalog.id_key))
def test_claim_fails_when_the_promise_is_broken(claim_id, world, monkeypatch):
    switch, expected = BREAKS[claim_id]
    v = run_claim(claim_id, world, {switch}, monkeypatch)
    assert v.status == expected, (switch, v.status, v.reason, v.evidence)
