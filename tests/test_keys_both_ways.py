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

import importlib.util
import json
import math
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from faulty_gateway import Running, Spec
from harness import catalog
from harness.checks import base
from harness.client import admin
from harness.client.control import ProviderControl
from harness.client.http import GatewayClient
from harness.config import CALL_PLACEHOLDERS, TARGETS, ConfigError, Keys, ProviderCfg, load, parse
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
    "CM-28.1": [("created_key_unusable", "FAIL", "never accepted"), ("create_lags", "FAIL", "accepted only"),
                ("created_key_not_forwarded", "FAIL", "never reached a provider")],
    "CM-28.2": [("revoke_ignored", "FAIL", "still not refused"), ("revoke_lags", "FAIL", "refused only"),
                ("refused_after_forward", "FAIL", "still reached a provider"),
                ("created_key_unusable", "ERROR", "the created key was never accepted")],
    "CM-28.3": [("expiry_ignored", "FAIL", "still not refused"), ("refused_after_forward", "FAIL", "still reached a provider")],
    "CM-28.4": [("budget_not_enforced", "FAIL", "still not refused"),
                ("refused_after_forward", "FAIL", "still reached a provider"),
                ("budget_refuses_early", "FAIL", "when it had spent"),
                # a 404 after the budget is no budget refusal (promises.keys.budget_statuses)
                ("budget_wrong_status", "FAIL", "still not refused")],
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
                prices={"gpt-mock": PRICE}, revoke_lag_s=WITHIN_S + 1.0, create_lag_s=WITHIN_S + 1.0)
    gw = Running(spec)
    try:
        cfg = harness_config(gw.url, keys)
        verdict = gw.judge(cfg, CLAIMS[claim_id], {"oa": ProviderControl("oa", urls["oa"])}, KEY, timeout_s=10)
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
    assert v.evidence["cleanup"]["revocations_took_effect"] is True   # settled before the next claim's change
    assert_clean(v, gateway)


@pytest.mark.parametrize("claim_id,switch,expected,phrase",
                         [(c, *variant) for c in sorted(BREAKS, key=catalog.id_key) for variant in BREAKS[c]])
def test_claim_fails_when_the_promise_is_broken(claim_id, switch, expected, phrase, world):
    v, gateway = run_claim(claim_id, world, {switch})
    assert v.status == expected, (switch, v.status, v.reason, v.evidence)
    assert phrase in v.reason, v.reason
    assert gateway.deleted, "the created key was not revoked at the end"
    assert_clean(v, gateway)


def test_the_cleanup_says_when_its_revocations_never_took_effect(world):
    # The end of a claim waits for its revocations to take effect, so the next claim's change never
    # lands in the middle of this one's (CLIProxyAPI loses a change saved during a reload); when one
    # never does, the evidence says so.
    v, _ = run_claim("CM-28.1", world, {"revoke_ignored"})
    assert v.status == "PASS" and v.evidence["cleanup"]["revocations_took_effect"] is False, v.evidence


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
    # a placeholder the API knows, in a call that is not sent it (it would have raised KeyError at run time)
    ({"create": {"path": "/key/generate", "body": {"max_budget": "{budget}"}, "field": "key"}},
     "promises.keys: create: {budget} is not sent with this call (it sends {key}, {alias})"),
    ({"revoke": {"path": "/key/delete", "body": {"keys": ["{key}"], "duration": "{expires_s}s"}}},
     "promises.keys: revoke: {expires_s} is not sent with this call"),
    ({"create_expiring": {"path": "/key/generate", "body": {"duration": "{expires_s}s", "max_budget": "{budget}"}}},
     "promises.keys: create_expiring: {budget} is not sent with this call"),
    ({"spend": {"method": "GET", "path": "/key/info?key={key}&d={expires_s}", "field": "info.spend"}},
     "promises.keys: spend: {expires_s} is not sent with this call"),
    ({"budget_statuses": [200]}, "promises.keys: budget_statuses: 200 is not an error status"),
    ({"budget_statuses": []}, "promises.keys.budget_statuses: List should have at least 1 item"),
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


CLAIM_OF_CALL = {"create": "CM-28.1", "revoke": "CM-28.2", "create_expiring": "CM-28.3", "create_budgeted": "CM-28.4",
                 "spend": "CM-28.5"}


@pytest.mark.parametrize("call", sorted(CALL_PLACEHOLDERS))
def test_every_placeholder_a_call_allows_is_sent(call, world):
    """What config.Keys lets a call hold is what the check fills: each allowed placeholder in the
    call's query (the faulty gateway ignores it) and its claim still PASSes (a KeyError would ERROR)."""
    assert set(CLAIM_OF_CALL) == set(CALL_PLACEHOLDERS)
    extra = "&".join(f"h_{p}={{{p}}}" for p in CALL_PLACEHOLDERS[call])
    declared = KEYS_PROMISE[call]
    keys = {**KEYS_PROMISE, call: {**declared, "path": declared["path"] + ("&" if "?" in declared["path"] else "?") + extra}}
    v, gateway = run_claim(CLAIM_OF_CALL[call], world, set(), keys)
    assert v.status == "PASS", (v.status, v.reason, v.evidence)
    assert_clean(v, gateway)


def test_the_budget_refusal_is_the_promised_status(world):
    """A gateway that answers a spent budget with its own status says so (budget_statuses) and passes."""
    v, _ = run_claim("CM-28.4", world, {"budget_wrong_status"}, {**KEYS_PROMISE, "budget_statuses": [404]})
    assert v.status == "PASS" and v.evidence["refusal_statuses"] == [404], (v.status, v.reason)


def test_the_default_budget_statuses_hold_litellms():
    """LiteLLM answers a spent budget with litellm.budget_exceeded_status_code (read from its source,
    not imported: importing it fetches a price map)."""
    source = Path(importlib.util.find_spec("litellm").origin).read_text()
    found = re.search(r"^budget_exceeded_status_code: int = (\d+)", source, re.M)
    assert found, "litellm/__init__.py no longer sets budget_exceeded_status_code"
    assert int(found.group(1)) in Keys().budget_statuses


# --- no key in any file the run writes, a missing admin key before anything starts ------------------

GATEWAY_SCRIPT = """
import asyncio, json, sys
sys.path.insert(0, {tests!r})
import aiohttp
from aiohttp import web
from faulty_gateway import Gateway, Spec

cfg = json.load(open(sys.argv[1]))
gw = Gateway(Spec(deployments={{"gpt-mock": (cfg["oa"], "gpt-4o-mini")}}, fallbacks={{}}, keys=set(cfg["keys"]),
                  breaks={{"log_secrets"}}, prices={{"gpt-mock": (1e-6, 2e-6)}}, vkey_prefix=cfg["prefix"],
                  log_path="requests.log"))

async def main():
    gw.session = aiohttp.ClientSession()
    runner = web.AppRunner(gw.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", cfg["port"]).start()
    await asyncio.Event().wait()

asyncio.run(main())
"""


def faulty_target(tmp_path: Path, prefix: str) -> Path:
    """A harness.yaml whose gateway (the faulty one, started by the harness) logs every request's URL
    and key (log_secrets), makes keys starting with `prefix`, and takes the admin key from $KEYS_ADMIN."""
    (tmp_path / "gw.py").write_text(GATEWAY_SCRIPT.format(tests=str(Path(__file__).parent)))
    (tmp_path / "gw.json.j2").write_text(
        '{"port": {{ port }}, "oa": "{{ providers.oa.url }}", "prefix": "%s", '
        '"keys": ["{{ gateway_key }}", "{{ env.KEYS_ADMIN | default('') }}"]}' % prefix)
    keys = {**KEYS_PROMISE, "admin_key_env": "KEYS_ADMIN", "within_s": 2, "expires_s": 2}
    cfg = {"version": 1,
           "target": {"name": "faulty", "auth": {"key": "generate"},
                      "start": {"command": ["{{ python }}", str(tmp_path / "gw.py"), "{{ config_path }}"],
                                "config_template": "gw.json.j2", "config_filename": "gw.json", "ready_timeout_s": 20}},
           "providers": [{"name": "oa", "kind": "openai"}],
           "models": [{"name": "gpt-mock", "provider": "oa", "upstream_model": "gpt-4o-mini"}],
           "defaults": {"openai_model": "gpt-mock"},
           "promises": {"keys": keys}}
    path = tmp_path / "h.yaml"
    path.write_text(json.dumps(cfg))
    return path


def harness_run(cfg: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", "run", "-c", str(cfg), "-o", str(out), "-n", "2",
                           "--only", "CM-28", "--no-load", "--no-smoke", "--history", str(out.parent / "history")],
                          capture_output=True, text=True, timeout=300, env=env)


def test_no_created_or_admin_key_in_any_file_written(tmp_path):
    """Canaries unlike sk- keys (a redactor must be told them): the admin key from admin_key_env and
    every key the gateway made, which its log holds in URLs (/key/info?key=...) and beside each request.
    The claims run in xdist workers; the log is copied by the run's controller."""
    admin_key, prefix = f"admincanary{secrets.token_hex(12)}", f"vkcanary{secrets.token_hex(6)}"
    out = tmp_path / "out"
    r = harness_run(faulty_target(tmp_path, prefix), out, {**os.environ, "KEYS_ADMIN": admin_key})
    assert r.returncode in (0, 1), r.stdout[-2000:] + r.stderr[-2000:]
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    verdicts = {x["id"]: x["status"] for x in results if x.get("type") == "record"}
    assert verdicts == {c: "PASS" for c in CLAIMS}, verdicts   # keys were made, used and revoked
    log = out / "logs" / "requests.log"
    assert "/key/info?key=***" in log.read_text(), log.read_text()[:2000]   # the log held them, masked
    files = [p for p in [*out.rglob("*"), *(tmp_path / "history").rglob("*")] if p.is_file()]
    for p in files:
        data = p.read_bytes()
        for secret in (admin_key, prefix):
            assert secret.encode() not in data, f"{secret[:12]}... in {p}"
    for text in (r.stdout, r.stderr):
        assert admin_key not in text and prefix not in text


def test_a_missing_admin_key_env_is_exit_2_before_anything_starts(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KEYS_ADMIN"}
    r = harness_run(faulty_target(tmp_path, "vk"), tmp_path / "out", env)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == [
        f"harness: error: {tmp_path / 'h.yaml'}: promises.keys.admin_key_env: environment variable KEYS_ADMIN is not set"], r.stderr
    assert not (tmp_path / "out" / "results.jsonl").exists()   # stopped before the run began


def test_a_secret_shared_by_another_process_is_redacted(tmp_path):
    """The way a key made in a pytest worker reaches the controller's redactor (WorldInfo.secrets_file)."""
    from harness.secrets import Redactor
    shared, secret = tmp_path / "secrets", "made" + secrets.token_hex(8)
    red = Redactor()
    red.follow(shared)
    assert red.text(f"x {secret} y") == f"x {secret} y"   # nothing shared yet
    subprocess.run([sys.executable, "-c", f"from harness.secrets import share; share({str(shared)!r}, {secret!r})"],
                   check=True, timeout=60)
    assert red.text(f"x {secret} y") == "x *** y"
    assert red.data({"a": [secret]}) == {"a": ["***"]}
    assert shared.stat().st_mode & 0o777 == 0o600


# --- admin-call templates (harness/client/admin.py) ----------------------------------------------

def test_numbers_in_admin_call_strings_are_exact():
    assert admin.fill({"duration": "{expires_s}s", "budget": "{budget}", "note": "b={budget}"},
                      {"expires_s": 2.0, "budget": 1234567.0}) == {"duration": "2s", "budget": 1234567.0, "note": "b=1234567"}
    assert admin.fill("/k?b={budget}", {"budget": 0.1 + 0.2}, in_path=True) == "/k?b=0.30000000000000004"
    assert admin.text(5e-05) == "0.00005" and admin.text(1e20) == "100000000000000000000"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_reads_back_as_itself(x):
    """Whatever the number, its text is plain digits (no exponent a gateway's parser may refuse) and
    reads back as the very same float."""
    t = admin.text(x)
    assert float(t) == x and "e" not in t.lower() and math.isfinite(float(t))


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
