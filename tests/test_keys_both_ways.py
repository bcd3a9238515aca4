"""Client keys through the gateway's admin API (CM-28), both ways: PASS against a gateway that keeps
each promise, FAIL (with the reason) against one with exactly that promise broken; the premise
failing (a created key that never works) is not judged, never a FAIL. Every key a check created is
revoked at the end, whatever the verdict, and no key reaches the verdict.

The gateway is tests/faulty_gateway.py, whose admin API has LiteLLM's shape (/key/generate,
/key/delete, /key/info), described to the harness as data (promises.keys). Also here: the built-in
targets' keys claims without a gateway (LiteLLM: no database; CLIProxyAPI: no expiry, budget or
spend) and a bad promises.keys as one line naming the field, exit 2.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faulty_gateway import Running, Spec
from harness import catalog
from harness.checks import base
from harness.client.control import ProviderControl
from harness.client.http import GatewayClient
from harness.config import TARGETS, ConfigError, ProviderCfg, load, parse
from harness.oracles import keys as ko
from harness.paths import MATRICES
from harness.world.mocks import start_mocks
from timing import bound

KEY = "sk-good-key-1234567"              # the faulty gateway's master key: the admin credential
CHECKS = base.load_all()
CLAIMS = {c.id: c for c in catalog.load_file(MATRICES / "claims" / "28-keys-and-budgets.yaml")}
WITHIN_S = bound(0.2)                    # the promised bound; the reference takes effect at once
PRICE = (1e-6, 2e-6)                     # per prompt token, per completion token
BUDGET = 5e-5                            # a few of the mock's answers

# claim id -> [(break switch, verdict, a phrase of its reason)]
BREAKS = {
    "CM-28.1": [("created_key_unusable", "FAIL", "never accepted")],
    "CM-28.2": [("revoke_ignored", "FAIL", "still not refused"), ("revoke_lags", "FAIL", "refused only"),
                ("refused_after_forward", "FAIL", "still reached a provider"),
                ("created_key_unusable", "ERROR", "the created key was never accepted")],
    "CM-28.3": [("expiry_ignored", "FAIL", "still not refused"), ("refused_after_forward", "FAIL", "still reached a provider")],
    "CM-28.4": [("budget_not_enforced", "FAIL", "still not refused"),
                ("refused_after_forward", "FAIL", "still reached a provider")],
    "CM-28.5": [("spend_misreported", "FAIL", "the reported spend is")],
}

KEYS_PROMISE = {
    "create": {"path": "/key/generate", "body": {"key_alias": "{alias}"}, "field": "key"},
    "revoke": {"path": "/key/delete", "body": {"keys": ["{key}"]}},
    "create_expiring": {"path": "/key/generate", "body": {"duration": "{expires_s}s"}, "field": "key"},
    "create_budgeted": {"path": "/key/generate", "body": {"max_budget": "{budget}"}, "field": "key"},
    "spend": {"method": "GET", "path": "/key/info?key={key}", "field": "info.spend"},
    "within_s": WITHIN_S, "expires_s": bound(0.5), "budget": BUDGET,
    "price": {"input": PRICE[0], "output": PRICE[1]}, "spend_tolerance": 0.01,
}


def test_every_keys_claim_is_tested_both_ways():
    assert set(CLAIMS) == set(BREAKS) and len(CLAIMS) == 5
    assert all(CLAIMS[c].check in CHECKS and CLAIMS[c].group == "keys-admin" for c in CLAIMS)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    child, ports = start_mocks([ProviderCfg(name="oa", kind="openai")], tmp_path_factory.mktemp("mocks"))
    yield {"oa": f"http://127.0.0.1:{ports['oa']}"}
    child.stop(grace_s=3)


def harness_config(gateway_url: str, keys: dict | None = KEYS_PROMISE):
    return parse({
        "target": {"name": "faulty", "url": gateway_url, "auth": {"key": KEY}},
        "providers": [{"name": "oa", "kind": "openai"}],
        "models": [{"name": "gpt-mock", "provider": "oa", "upstream_model": "gpt-4o-mini"}],
        "defaults": {"openai_model": "gpt-mock"},
        "promises": {"keys": keys} if keys is not None else {},
    }, "keys harness.yaml")


def run_claim(claim_id: str, urls: dict[str, str], breaks: set[str], keys: dict | None = KEYS_PROMISE):
    spec = Spec(deployments={"gpt-mock": (urls["oa"], "gpt-4o-mini")}, fallbacks={}, keys={KEY}, breaks=breaks,
                prices={"gpt-mock": PRICE}, revoke_lag_s=WITHIN_S + 1.0)
    gw = Running(spec)
    try:
        cfg = harness_config(gw.url, keys)
        client = GatewayClient(gw.url, "Authorization", f"Bearer {KEY}", read_s=10, request_s=10, stream_s=10)
        providers = {"oa": ProviderControl("oa", urls["oa"])}
        ctx = base.CheckContext(cfg, client, providers, KEY, claim_id)
        verdict = base.run(ctx, CLAIMS[claim_id].check, dict(CLAIMS[claim_id].params))
        return verdict, gw.gateway
    finally:
        gw.stop()


def assert_clean(verdict, gateway):
    """Every key the check made was revoked at the end; no key is in the verdict."""
    assert set(gateway.vkeys) <= set(gateway.deleted), "a created key was left live"
    text = json.dumps(verdict.to_json())
    for key in [KEY, *gateway.vkeys, *gateway.deleted]:
        assert key not in text, f"{key[:8]}... in the verdict"


@pytest.mark.parametrize("claim_id", sorted(BREAKS, key=catalog.id_key))
def test_claim_passes_when_the_promise_is_kept(claim_id, world):
    v, gateway = run_claim(claim_id, world, set())
    assert v.status == "PASS", (v.status, v.reason, v.evidence)
    assert gateway.deleted and v.evidence["cleanup"]["failed"] == []
    assert_clean(v, gateway)


@pytest.mark.parametrize("claim_id,switch,expected,phrase",
                         [(c, *variant) for c in sorted(BREAKS, key=catalog.id_key) for variant in BREAKS[c]])
def test_claim_fails_when_the_promise_is_broken(claim_id, switch, expected, phrase, world):
    v, gateway = run_claim(claim_id, world, {switch})
    assert v.status == expected, (switch, v.status, v.reason, v.evidence)
    assert phrase in v.reason, v.reason
    assert gateway.deleted, "the created key was not revoked at the end"
    assert_clean(v, gateway)


def test_a_late_revocation_is_measured_past_the_bound(world):
    """How late a revocation took effect is said, not only that it was late."""
    v, _ = run_claim("CM-28.2", world, {"revoke_lags"})
    assert v.status == "FAIL" and v.evidence["bound_s"] == WITHIN_S
    assert WITHIN_S + 1.0 <= v.evidence["refused_after_s"] <= bound(WITHIN_S + 1.0), v.evidence


def test_the_budget_claim_prices_the_journals_usage(world):
    v, _ = run_claim("CM-28.4", world, set())
    assert v.status == "PASS" and v.evidence["spent_when_reached"] >= BUDGET
    v, _ = run_claim("CM-28.5", world, set())
    usages = v.evidence["usages"]
    assert len(usages) >= 4   # the first accepted request and three more, each priced
    assert v.evidence["expected"] == pytest.approx(sum(u["prompt_tokens"] * PRICE[0] + u["completion_tokens"] * PRICE[1]
                                                       for u in usages))


def test_without_an_admin_api_every_keys_claim_is_unsupported(world):
    for cid in CLAIMS:
        v, gateway = run_claim(cid, world, set(), keys=None)
        assert v.status == "UNSUPPORTED" and "declares no admin API" in v.reason, v.reason
        assert not gateway.deleted


def test_not_offered_says_why():
    keys = {k: v for k, v in KEYS_PROMISE.items() if k not in ("create_budgeted", "budget")}
    keys["not_offered"] = {"budget": "no budgets: config.go:12@v1"}
    cfg = harness_config("http://127.0.0.1:9", keys)
    ctx = base.CheckContext(cfg, GatewayClient("http://127.0.0.1:9", None, None), {}, KEY, "CM-28.4")
    v = base.run(ctx, "keys.budget", {})
    assert v.status == "UNSUPPORTED" and v.reason == "a budget for keys is not offered: no budgets: config.go:12@v1"


def _offline(target: str, claim_id: str) -> base.Verdict:
    """A built-in target's claim judged with no gateway at all: what it does not offer needs none."""
    cfg, _ = load(TARGETS / f"{target}.yaml")
    client = GatewayClient("http://127.0.0.1:9", None, None, connect_s=0.5, request_s=1)
    ctx = base.CheckContext(cfg, client, {}, "sk-harness-offline-0000", claim_id)
    return base.run(ctx, CLAIMS[claim_id].check, {})


@pytest.mark.parametrize("claim_id", sorted(BREAKS, key=catalog.id_key))
def test_litellm_without_a_database_offers_no_keys(claim_id):
    v = _offline("litellm", claim_id)
    assert v.status == "UNSUPPORTED", (v.status, v.reason)
    assert "key_management_endpoints.py:2251-2255" in v.reason and "@1.108.7" in v.reason, v.reason


@pytest.mark.parametrize("claim_id", ["CM-28.3", "CM-28.4", "CM-28.5"])
def test_cliproxyapi_has_no_expiry_budget_or_spend(claim_id):
    v = _offline("cliproxyapi", claim_id)
    assert v.status == "UNSUPPORTED" and "@v7.2.140" in v.reason, (v.status, v.reason)


@pytest.mark.parametrize("change,says", [
    ({"create": {"path": "/key/generate", "body": {"alias": "{alais}"}, "field": "key"}},
     "promises.keys.create: unknown placeholder {alais}"),
    ({"create": {"path": "/key/generate"}}, "create: give `field`"),
    ({"revoke": {"path": "/key/delete", "body": {"keys": []}}}, "revoke: its path or body must name the key"),
    ({"create_budgeted": {"path": "/key/generate", "body": {"max_budget": 1}, "field": "key"}},
     "create_budgeted: its path or body must send {budget}"),
    ({"spend": {"method": "GET", "path": "/key/info?key={key}"}}, "spend: give `field`"),
    ({"price": None}, "price: required with spend or create_budgeted"),
    ({"not_offered": {"spend": "none"}}, "not_offered.spend: the operation is declared too"),
    ({"within_s": 0}, "promises.keys.within_s: Input should be greater than 0"),
    ({"model": "nope"}, "promises.keys.model: 'nope' is not one of the models"),
])
def test_a_bad_keys_promise_names_the_field(change, says):
    with pytest.raises(ConfigError) as err:
        harness_config("http://127.0.0.1:9", {**KEYS_PROMISE, **change})
    assert says in str(err.value), str(err.value)


def test_a_bad_keys_promise_is_one_line_and_exit_2(tmp_path):
    cfg = (TARGETS / "cliproxyapi.yaml").read_text()
    bad = cfg.replace('body: {old: "{key}", new: "{key}"}', 'body: {old: "{key}", new: "{kee}"}')
    assert bad != cfg
    (tmp_path / "h.yaml").write_text(bad)
    (tmp_path / "cliproxyapi.config.yaml.j2").write_text("")
    r = subprocess.run([sys.executable, "-m", "harness", "validate", "-c", str(tmp_path / "h.yaml")],
                       capture_output=True, text=True, timeout=60, env={**os.environ})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "h.yaml: promises.keys.create: unknown placeholder {kee}" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# --- the judging itself (harness/oracles/keys.py), on made-up timelines ---------------------------

@given(st.lists(st.floats(0, 5), min_size=1, max_size=20, unique=True).map(sorted), st.integers(0, 19),
       st.floats(0.1, 5))
def test_a_refusal_counts_from_the_first_refused_request(times, k, bound_s):
    """Requests accepted before the first refusal are allowed; the verdict hangs on when it came."""
    k = k % len(times)
    probes = [ko.Probe(t, 200 if i < k else 401, i < k) for i, t in enumerate(times)]
    violations, first = ko.refusal(probes, bound_s, {401}, "the revocation")
    assert first == times[k]
    assert (violations == []) == (times[k] <= bound_s), violations


@given(st.lists(st.sampled_from([200, 401, 500, None]), min_size=2, max_size=10), st.booleans())
def test_a_refusal_must_last_and_never_reach_a_provider(statuses, reached):
    probes = [ko.Probe(0.01 * i, s, reached and s == 401, None if s else "reset") for i, s in enumerate([401, *statuses])]
    violations, first = ko.refusal(probes, 1.0, {401}, "x")
    assert first == 0.0
    assert any("not refused again" in v for v in violations) == any(s != 401 for s in statuses)
    assert any("still reached a provider" in v for v in violations) == reached


@given(st.floats(1e-6, 1.0), st.floats(-0.5, 0.5), st.sampled_from([0.0, 0.01, 0.1]))
def test_spend_within_the_tolerance_matches(expected, off, tolerance):
    """Relative, with an absolute floor of 1e-12 (a float's rounding, not a price)."""
    violations = ko.spend_matches(expected * (1 + off), expected, tolerance)
    if abs(off) <= tolerance * 0.99:
        assert violations == []
    elif abs(off) >= tolerance * 1.01 and abs(off) * expected > 2e-12:
        assert violations and "tolerance" in violations[0]
