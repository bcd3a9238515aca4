"""The metrics and gateway-log claims (CM-23.6-23.10), both ways: PASS against a gateway whose /metrics
agree with what the callers saw and whose log carries every request id, FAIL against one with exactly
that promise broken (tests/faulty_gateway.py: one switch each), UNSUPPORTED where nothing is promised.
The oracle that reads Prometheus text is held to prometheus_client's own writer."""
from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from faulty_gateway import Running, Spec
from harness import catalog
from harness.checks import base, observability
from harness.client.control import ProviderControl
from harness.config import ConfigError, ProviderCfg, parse
from harness.oracles import metrics as mo
from harness.paths import MATRICES
from harness.world.mocks import start_mocks
from timing import bound

KEY = "sk-good-key-1234567"
CHECKS = base.load_all()
CLAIMS = {c.id: c for c in catalog.load_file(MATRICES / "claims" / "23-observability-backend.yaml")}
METRICS = {"path": "/metrics", "requests": "gateway_requests_total", "errors": "gateway_errors_total",
           "latency": "gateway_request_duration_seconds", "model_label": "model",
           "settle_s": 1}   # the reference counts before it answers: a short wait shows a miss as well as 5 s

# claim id -> [(switch that breaks the promise, a phrase of the reason it must give)]
BREAKS = {
    "CM-23.6": [("metrics_misses_errors", "rose by 7, expected 10"), ("metrics_counts_twice", "rose by 20, expected 10")],
    "CM-23.7": [("metrics_misses_errors", "rose by 0, expected 3"), ("metrics_counts_twice", "rose by 6, expected 3")],
    "CM-23.8": [("metrics_latency_wrong", "the harness measured"), ("metrics_misses_errors", "observed 7 requests, expected 10")],
    "CM-23.9": [("log_no_request_id", "is not in the gateway's log"), ("log_other_request_id", "is not in the gateway's log"),
                ("request_id_constant", "two requests got the same x-request-id '7'")],
    "CM-23.10": [("log_no_request_id", "is not in the gateway's log"), ("log_other_request_id", "is not in the gateway's log"),
                 ("request_id_constant", "two requests got the same x-request-id '7'")],
}


def test_every_claim_is_tested_both_ways():
    assert set(CLAIMS) == set(BREAKS)
    assert all(c.check in CHECKS for c in CLAIMS.values())


@pytest.fixture(scope="module")
def oa(tmp_path_factory):
    """The provider of every model, and a second one (`.backup`) for a fallback that rescues."""
    child, ports = start_mocks([ProviderCfg(name=n, kind="openai") for n in ("oa", "ob")], tmp_path_factory.mktemp("mocks"))
    yield Urls(f"http://127.0.0.1:{ports['oa']}", f"http://127.0.0.1:{ports['ob']}")
    child.stop(grace_s=3)


class Urls(str):
    def __new__(cls, url: str, backup: str) -> "Urls":
        obj = super().__new__(cls, url)
        obj.backup = backup
        return obj


def harness_config(gateway_url: str, promises: dict) -> object:
    return parse({
        "target": {"name": "faulty", "url": gateway_url, "auth": {"key": KEY}, "paths": {"health": "/health"}},
        "providers": [{"name": "oa", "kind": "openai"}],
        "models": [{"name": "gpt-mock", "provider": "oa"}, {"name": "obs-model", "provider": "oa"},
                   {"name": "nf-model", "provider": "oa"}],
        "defaults": {"openai_model": "gpt-mock"},
        "roles": {"metrics": "obs-model", "no_fallback": "nf-model"},
        "promises": promises,
    }, "observability harness.yaml")


def run_claim(claim_id: str, oa: str, tmp_path, breaks: frozenset[str] = frozenset(), promises: dict | None = None,
              logs: bool = True, fallbacks: dict | None = None, params: dict | None = None) -> base.Verdict:
    promises = promises if promises is not None else {
        "request_id": {"header": "x-request-id", "logged": "all"}, "metrics": METRICS}
    log = tmp_path / "gateway.log"
    spec = Spec(deployments={**{m: (oa, m) for m in ("gpt-mock", "obs-model", "nf-model")}, "backup": (oa.backup, "backup")},
                fallbacks=fallbacks or {}, keys={KEY},
                breaks=set(breaks), log_path=str(log))
    gw = Running(spec)
    try:
        cfg = harness_config(gw.url, promises)
        return gw.judge(cfg, CLAIMS[claim_id], {"oa": ProviderControl("oa", oa)}, KEY, params=params,
                        gateway_logs=[str(tmp_path / "gateway*.log")] if logs else [])
    finally:
        gw.stop()


@pytest.mark.parametrize("claim_id", sorted(BREAKS, key=catalog.id_key))
def test_claim_passes_when_the_promise_is_kept(claim_id, oa, tmp_path):
    v = run_claim(claim_id, oa, tmp_path)
    assert v.status == "PASS", (v.status, v.reason, v.evidence)


@pytest.mark.parametrize("claim_id,switch", [(c, s) for c in sorted(BREAKS, key=catalog.id_key) for s, _ in BREAKS[c]])
def test_claim_fails_when_the_promise_is_broken(claim_id, switch, oa, tmp_path, monkeypatch):
    monkeypatch.setattr("harness.checks.observability.LOG_WAIT_S", 1.0)   # its line is written before the answer
    v = run_claim(claim_id, oa, tmp_path, frozenset({switch}))
    assert v.status == "FAIL", (switch, v.status, v.reason, v.evidence)
    assert dict(BREAKS[claim_id])[switch] in v.reason, v.reason


@pytest.mark.parametrize("claim_id,promises,logs,why", [
    ("CM-23.6", {}, True, "promises no metrics route"),
    ("CM-23.7", {"metrics": {k: v for k, v in METRICS.items() if k != "errors"}}, True, "no error counter"),
    ("CM-23.8", {"metrics": {k: v for k, v in METRICS.items() if k != "latency"}}, True, "no latency figure"),
    ("CM-23.9", {}, True, "promises no request id header"),
    ("CM-23.9", {"request_id": {"header": "x-request-id"}}, True, "does not promise to write"),
    ("CM-23.10", {"request_id": {"header": "x-request-id", "logged": "errors"}}, True, "failed requests only"),
    ("CM-23.9", {"request_id": {"header": "x-request-id", "logged": "all"}}, False, "did not start the gateway"),
])
def test_nothing_promised_is_unsupported(claim_id, promises, logs, why, oa, tmp_path):
    v = run_claim(claim_id, oa, tmp_path, promises=promises, logs=logs)
    assert v.status == "UNSUPPORTED" and why in v.reason, (v.status, v.reason)


def test_a_route_that_is_not_prometheus_text_fails(oa, tmp_path):
    v = run_claim("CM-23.6", oa, tmp_path, promises={"metrics": {**METRICS, "path": "/v1/models"}})
    assert v.status == "FAIL" and "is not Prometheus text" in v.reason, (v.status, v.reason)


@pytest.mark.parametrize("claim_id", ["CM-23.9", "CM-23.10"])
def test_request_ids_too_short_to_look_up_are_not_judged(claim_id, oa, tmp_path):
    """Ids 1, 2, 3...: each is in its log line, but as a substring '1' is in nearly every line; the
    harness cannot tell the request's line from others, so no verdict (PASS without the length rule)."""
    v = run_claim(claim_id, oa, tmp_path, frozenset({"request_id_short"}))
    assert v.status == "ERROR" and "shorter than 8 characters" in v.reason, (v.status, v.reason)


def test_a_log_id_counts_only_as_a_whole_token(tmp_path):
    rid = "abc12345"
    log = tmp_path / "gateway.log"
    log.write_text(f"id=x{rid} no\n{rid}-7 no\nreq_{rid} no\n{rid}9 no\n")
    found, _ = observability._find_ids([str(log)], [rid], 0)
    assert found == {rid: []}, found   # a longer id that holds it is not it
    with log.open("a") as f:
        f.write(f'"request_id": "{rid}", ok\nrequest_id={rid}\n')
    found, _ = observability._find_ids([str(log)], [rid], 0)
    assert [line.split(": ", 1)[1] for line in found[rid]] == [f'"request_id": "{rid}", ok', f"request_id={rid}"]


def test_the_log_is_read_from_where_the_last_poll_stopped(tmp_path):
    log = tmp_path / "gateway.log"
    log.write_text("one\ntwo\nthr")
    tail = observability._LogTail([str(tmp_path / "gateway*.log")])
    assert tail.new_lines() == [("gateway.log", "one"), ("gateway.log", "two")]   # a line being written waits
    assert tail.new_lines() == []                                                # nothing read twice
    with log.open("a") as f:
        f.write("ee\nfour\n")
    assert tail.new_lines() == [("gateway.log", "three"), ("gateway.log", "four")]
    log.write_text("new\n")   # rotated: shorter than what was read, so read again from its start
    assert tail.new_lines() == [("gateway.log", "new")]


def test_a_latency_observed_after_the_request_counter_is_waited_for(oa, tmp_path):
    """The gateway observes each latency a while after it counted the request (and answered): the
    warm-up's observation must land before the baseline is read, or the batch's count is one too many."""
    late_s = Spec.latency_late_s
    assert late_s > 2 * 0.2   # past the check's pause after settling (POLL_S * 2): the fault can show
    promises = {"request_id": {"header": "x-request-id", "logged": "all"},
                "metrics": {**METRICS, "settle_s": bound(late_s)}}
    v = run_claim("CM-23.8", oa, tmp_path, frozenset({"metrics_latency_late"}), promises=promises)
    assert v.status == "PASS", (v.status, v.reason, v.evidence)


@pytest.mark.parametrize("claim_id", ["CM-23.7", "CM-23.9"])
def test_the_checks_leave_no_script_behind(claim_id, oa, tmp_path):
    """Their scripts hold for every request with the claim's tags: cleared when the claim ends."""
    def rules() -> list:
        return httpx.get(f"{oa}/__harness/script", timeout=5).json()["rules"]
    before = rules()
    v = run_claim(claim_id, oa, tmp_path)
    assert v.status == "PASS", (v.status, v.reason)
    assert [r for r in rules() if r not in before] == []


@pytest.mark.parametrize("params,field", [
    ("{figure: requests, requests: 60}", "params.requests: 60 is not from 1 to 50"),
    ("{figure: requests, requests: 5, errors: 5}", "params.errors: 5 is not from 0 to fewer than requests (5)"),
    ("{figure: errors, fail_status: 200}", "params.fail_status: 200 is not an HTTP error status"),
])
def test_bad_batch_params_are_refused_with_the_catalog(params, field, tmp_path):
    (tmp_path / "a.yaml").write_text("section: S\nclaims:\n  - {id: CM-1.1, test: test_x, claim: a claim, risk: "
                                     f"reliability, wave: P2, check: metrics.agree, params: {params}}}\n")
    with pytest.raises(ConfigError) as exc:
        catalog.load(tmp_path, known_checks=CHECKS)
    assert f"a.yaml: CM-1.1: {field}" in str(exc.value), str(exc.value)


def test_errors_the_caller_never_saw_are_not_judged(oa, tmp_path):
    """A gateway that rescues every provider error (a 500 fails over to another provider) leaves the
    error claims nothing to judge: ERROR, not PASS."""
    v = run_claim("CM-23.7", oa, tmp_path, fallbacks={"obs-model": ["backup"]}, params={"fail_status": 500})
    assert v.status == "ERROR" and "reached the caller as an error" in v.reason, (v.status, v.reason)


# -- the oracle ---------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b/c", 'q"uote']), st.lists(st.integers(1, 5), max_size=4), max_size=3),
       st.lists(st.floats(0.001, 30, allow_nan=False), max_size=6))
def test_the_parser_reads_what_prometheus_client_writes(incs, observations):
    reg = CollectorRegistry()
    c = Counter("req", "r", ["model", "status"], registry=reg)
    h = Histogram("lat_seconds", "l", ["model"], registry=reg)
    for model, steps in incs.items():
        for i, n in enumerate(steps):
            c.labels(model=model, status=str(200 + i)).inc(n)
    for x in observations:
        h.labels(model="a").observe(x)
    samples, problem = mo.parse(generate_latest(reg).decode())
    assert problem is None
    for model, steps in incs.items():
        assert mo.total(samples, "req_total", "model", model) == (sum(steps) if steps else None)
    if observations:
        assert mo.total(samples, "lat_seconds_count", "model", "a") == len(observations)
        assert mo.total(samples, "lat_seconds_sum", "model", "a") == pytest.approx(sum(observations))
    assert mo.total(samples, "req_total", "model", "nobody") is None


# The gateway's mean over or under the harness's: under is the realistic fault (a figure that leaves
# out the provider's time), down to a mean of 0.
@given(st.floats(0.01, 5).flatmap(lambda hm: st.tuples(st.just(hm), st.floats(-hm, 2))), st.integers(1, 20),
       st.sampled_from(["s", "ms"]))
def test_latency_agrees_exactly_when_within_the_tolerance(mean_and_off, n, unit):
    harness_mean, off = mean_and_off
    tol_ms, ratio = 50.0, 0.1
    mean = harness_mean + off
    total_s = mean * n
    violations, got = mo.latency_violations(total_s * (1000 if unit == "ms" else 1), n, n, harness_mean, unit, tol_ms, ratio)
    assert got == pytest.approx(mean, abs=1e-12)
    allowed = tol_ms / 1000 + ratio * harness_mean
    assert (violations == []) == (abs(off) <= allowed) or abs(abs(off) - allowed) < 1e-9
    assert mo.latency_violations(total_s, n + 1, n, harness_mean, "s", tol_ms, ratio)[0]   # a count off by one


def test_garbage_is_not_prometheus_text():
    for text in ("<html>404</html>", '{"status": "ok"}', "x{a=b} 1"):
        samples, problem = mo.parse(text)
        assert samples == [] and problem, text
    nan = mo.latency_violations(float("nan"), 3, 3, 0.1, "s", 50, 0.1)[0]
    assert nan and "nan" in nan[0]   # a NaN sum is no agreement
