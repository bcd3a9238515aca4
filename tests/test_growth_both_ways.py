"""The claims issue 15 added, both ways: PASS against a gateway that keeps the promise, and FAIL (or
SAFE / PARTIAL where the check says the promise was broken cleanly or only half kept) against one
with exactly that promise broken.

The gateway is tests/faulty_gateway.py (one switch per broken promise), in front of OpenAI- and
Anthropic-style mock providers and one that refuses connections. The claims are those of the files
below; `test_every_new_claim_is_tested_both_ways` holds the table to them.
"""
from __future__ import annotations


import pytest

from faulty_gateway import Running, Spec
from harness import catalog
from harness.checks import base
from harness.client.control import ProviderControl
from harness.config import ProviderCfg, parse
from harness.paths import MATRICES
from harness.world.mocks import start_mocks
from harness.world.processes import RefusingPort

KEY = "sk-good-key-1234567"
FILES = ("05-provider-client-errors.yaml", "05-streamed-resilience.yaml", "05-odd-streams.yaml", "05-flapping.yaml",
         "10-stream-completeness.yaml", "17-aliases.yaml", "18-routing.yaml", "22-health-contracts.yaml",
         "23-observability.yaml", "24-security.yaml", "25-client-sdks.yaml")
CHECKS = base.load_all()
CLAIMS = {c.id: c for f in FILES for c in catalog.load_file(MATRICES / "claims" / f)}
ALL = {c.id: c for c in catalog.load_all(known_checks=CHECKS)}

# claim id -> [(switches that break the promise, the verdict they must get)]
BREAKS: dict[str, list[tuple[frozenset[str], str]]] = {k: [(frozenset(v[0].split("+")), v[1]) for v in vs] for k, vs in {
    "CM-5.6.1": [("error_code_dropped", "FAIL"), ("retry_client_errors", "FAIL")],
    "CM-5.6.2": [("error_code_dropped", "FAIL")],
    "CM-5.6.3": [("error_code_dropped", "FAIL")],
    "CM-5.6.4": [("special_fallback_generic", "FAIL"), ("no_special_fallbacks", "SAFE"),
                 ("no_special_fallbacks+error_code_dropped", "FAIL")],
    "CM-5.6.5": [("special_fallback_generic", "FAIL")],
    "CM-5.6.6": [("no_special_fallbacks", "SAFE")],
    "CM-5.6.7": [("special_fallback_generic", "FAIL")],
    "CM-5.6.8": [("prefill_passed_off", "FAIL")],
    "CM-5.7.1": [("no_retry", "FAIL")], "CM-5.7.2": [("no_retry", "FAIL")],
    "CM-5.7.3": [("no_retry+failover_garbage", "FAIL")], "CM-5.7.4": [("no_retry", "FAIL")],
    "CM-5.7.5": [("no_retry+failover_garbage", "FAIL")], "CM-5.7.6": [("extra_retry", "FAIL")],
    "CM-5.7.7": [("retry_client_errors", "FAIL")], "CM-5.7.8": [("failover_garbage", "FAIL")],
    "CM-5.7.9": [("failover_garbage", "FAIL")], "CM-5.7.10": [("double_backup", "FAIL")],
    "CM-5.7.11": [("hedge", "FAIL")], "CM-5.7.12": [("chain_reversed", "FAIL")],
    "CM-5.7.13": [("model_names_primary", "FAIL")], "CM-5.7.14": [("failover_usage_doubled", "FAIL")],
    "CM-5.7.15": [("metadata_wrong", "FAIL")], "CM-5.7.16": [("hammer", "FAIL")],
    "CM-5.8.1": [("timeout_too_short", "FAIL")], "CM-5.8.2": [("no_timeout", "FAIL")],
    "CM-5.8.3": [("buffer_stream", "FAIL")], "CM-5.8.4": [("stream_total_timeout", "FAIL")],
    "CM-5.8.5": [("done_passthrough", "FAIL")], "CM-5.8.6": [("stream_fake_complete", "FAIL")],
    "CM-5.8.7": [("pass_malformed", "FAIL")],
    # the faulty gateway has a breaker (cooldown 1.5 s) and keeps the promise all the same: the bound
    # (promises.failover.returns_to_primary_s, 2 s) covers the cooldown; sticky_fallback never returns
    "CM-5.9.1": [("sticky_fallback", "FAIL")],
    # advisory: the gateway that ends the stream cleanly keeps the safety promise but rescues nothing
    "CM-5.8.8": [("skip_malformed-", "PARTIAL"), ("pass_malformed", "FAIL")],
    "CM-10.5.1": [("stream_truncate_clean", "FAIL")], "CM-10.5.2": [("stream_truncate_clean", "FAIL")],
    "CM-10.5.3": [("tool_args_truncated", "FAIL")], "CM-10.5.4": [("finish_always_stop", "FAIL")],
    "CM-10.5.5": [("finish_always_stop", "FAIL")], "CM-10.5.6": [("passthrough_truncate_clean", "FAIL")],
    "CM-10.5.7": [("passthrough_truncate_clean", "FAIL")],
    "CM-17.1": [("alias_upstream_wrong", "FAIL")], "CM-17.2": [("alias_upstream_wrong", "FAIL")],
    "CM-17.3": [("unknown_model_default", "FAIL")], "CM-17.4": [("unknown_model_default", "FAIL")],
    "CM-17.5": [("alias_beats_prefix", "FAIL")], "CM-17.6": [("model_name_wrong", "FAIL")],
    "CM-17.7": [("model_name_wrong", "FAIL")], "CM-17.8": [("alias_upstream_wrong", "FAIL")],
    "CM-18.1": [("routing_first_only", "FAIL")], "CM-18.2": [("routing_first_only", "FAIL")],
    "CM-18.3": [("routing_first_only", "FAIL")], "CM-18.4": [("routing_first_only", "FAIL")],
    "CM-22.1": [("health_text", "FAIL")], "CM-22.2": [("liveness_needs_key", "FAIL")],
    "CM-22.3": [("health_always_ok", "FAIL")],
    "CM-23.1": [("no_request_id", "FAIL")], "CM-23.2": [("no_request_id", "FAIL")],
    "CM-23.3": [("no_request_id", "FAIL")], "CM-23.4": [("request_id_not_echoed", "FAIL")],
    "CM-23.5": [("request_id_not_forwarded", "FAIL")],
    "CM-24.1": [("leak_provider_key_in_headers", "FAIL")], "CM-24.2": [("leak_provider_key_in_errors", "FAIL")],
    "CM-24.3": [("leak_master_key", "FAIL")], "CM-24.4": [("traceback_in_errors", "FAIL")],
    "CM-24.5": [("origin_bypasses_auth", "FAIL")], "CM-24.6": [("origin_bypasses_auth", "FAIL")],
    "CM-24.7": [("no_body_limit", "FAIL")], "CM-24.8": [("nested_json_500", "FAIL")],
    "CM-24.9": [("ws_no_auth", "FAIL")], "CM-24.10": [("ws_no_auth", "FAIL")],
    "CM-25.1": [("usage_inflated", "FAIL")], "CM-25.2": [("stream_truncate_clean", "FAIL")],
    "CM-25.3": [("stream_truncate_clean", "FAIL")], "CM-25.4": [("tool_args_truncated", "FAIL")],
    "CM-25.5": [("tool_args_truncated", "FAIL")], "CM-25.6": [("usage_inflated", "FAIL")],
    "CM-25.7": [("passthrough_truncate_clean", "FAIL")], "CM-25.8": [("unknown_model_500", "FAIL")],
    "CM-25.9": [("usage_inflated", "FAIL")], "CM-25.10": [("passthrough_truncate_clean", "FAIL")],
    "CM-25.11": [("passthrough_truncate_clean", "FAIL")], "CM-25.12": [("usage_inflated", "FAIL")],
    # Older completeness claims: a stream cut short and then ended cleanly keeps [DONE] and a
    # finish_reason, and must fail them all the same (judged from the content, not the markers).
    "CM-10.2.5": [("stream_truncate_clean", "FAIL")], "CM-10.2.6": [("stream_truncate_clean", "FAIL")],
    "CM-10.2.10": [("stream_truncate_clean", "FAIL")], "CM-5.1.16": [("stream_truncate_clean", "FAIL")],
}.items()}
# What the correct reference does beyond the faulty gateway's default for an advisory claim: it
# rescues (drops the malformed event, keeps streaming); the default ends the stream cleanly (PARTIAL,
# written above as the switch "skip_malformed-": the rescue taken away).
REFERENCE = {"CM-5.8.8": frozenset({"skip_malformed"})}
REASONS = {   # the reason each broken variant must give (a phrase of it)
    ("CM-10.5.1", "stream_truncate_clean"): "the caller read",
    ("CM-10.2.5", "stream_truncate_clean"): "the stream ended as complete",
    ("CM-10.2.6", "stream_truncate_clean"): "the stream ended as complete",
    ("CM-5.6.4", "no_special_fallbacks"): "did not happen, but the caller got a clean 400",
    ("CM-5.6.1", "error_code_dropped"): "error.code is",
    ("CM-5.8.8", "skip_malformed-"): "a clean error, not a rescue",
    ("CM-24.2", "leak_provider_key_in_errors"): "a provider key",
    ("CM-24.3", "leak_master_key"): "the master key",
    ("CM-5.6.8", "prefill_passed_off"): "the prefill passed off as the reply",
    ("CM-5.9.1", "sticky_fallback"): "stuck to the fallback",
}

ROUTING = {"wt-model": ("weighted", [("oa", 1.0), ("ob", 3.0)]), "lb-model": ("least-busy", [("oa", 1.0), ("ob", 1.0)]),
           "lat-model": ("latency-based", [("oa", 1.0), ("ob", 1.0)]), "cost-model": ("cost-based", [("oa", 1.0), ("ob", 0.1)])}


def test_every_new_claim_is_tested_both_ways():
    assert len(ALL) >= 200
    assert set(CLAIMS) <= set(BREAKS) <= set(ALL)
    for cid in BREAKS:
        assert ALL[cid].check, cid
    # a SAFE and a PARTIAL among the verdicts the new checks really produce
    statuses = {status for variants in BREAKS.values() for _, status in variants}
    assert {"FAIL", "SAFE", "PARTIAL"} <= statuses


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    child, ports = start_mocks([ProviderCfg(name=n, kind="openai") for n in ("oa", "ob", "oc")]
                               + [ProviderCfg(name="an", kind="anthropic")], tmp_path_factory.mktemp("mocks"))
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    dead = RefusingPort()   # held: a port merely free now could be bound by a later server, and answer
    urls["dead"] = f"http://127.0.0.1:{dead.port}"
    yield urls
    child.stop(grace_s=3)
    dead.close()


def harness_config(gateway_url: str):
    where = {"gpt-mock": "oa", "claude-mock": "an", "fo-primary": "oa", "fo-secondary": "ob", "fo-tertiary": "oc",
             "rt-model": "oa", "rt-backup": "ob", "to-model": "oa", "to-backup": "ob", "nf-model": "oc",
             "cw-model": "oa", "cw-large": "oc", "cw-generic": "ob", "cp-model": "oa", "cp-safe": "oc",
             "cp-generic": "ob", "dead-model": "dead", **{m: "oa" for m in ROUTING}}
    upstream = {"gpt-mock": "gpt-4o-mini", "claude-mock": "claude-3-5-haiku-20241022"}
    return parse({
        "target": {"name": "faulty", "url": gateway_url, "auth": {"key": KEY}, "paths": {"health": "/health"},
                   "protocols": ["openai_chat", "openai_responses", "anthropic_messages", "openai_realtime"]},
        "providers": [{"name": "oa", "kind": "openai"}, {"name": "ob", "kind": "openai"}, {"name": "oc", "kind": "openai"},
                      {"name": "an", "kind": "anthropic"}, {"name": "dead", "kind": "openai", "refuses_connections": True}],
        "models": [{"name": m, "provider": p, **({"upstream_model": upstream[m]} if m in upstream else {})}
                   for m, p in where.items()],
        "defaults": {"openai_model": "gpt-mock", "anthropic_model": "claude-mock"},
        "roles": {"failover": "fo-primary", "retry": "rt-model", "timeout": "to-model", "no_fallback": "nf-model"},
        "promises": {
            "fallbacks": {"fo-primary": ["fo-secondary", "fo-tertiary"], "rt-model": ["rt-backup"],
                          "to-model": ["to-backup"], "cw-model": ["cw-generic"], "cp-model": ["cp-generic"]},
            "context_window_fallbacks": {"cw-model": ["cw-large"]}, "content_policy_fallbacks": {"cp-model": ["cp-safe"]},
            "failover": {"preset": "5xx-and-429", "reports_model": "answering", "metadata_header": "x-gw-api-base",
                         "returns_to_primary_s": 2},
            "retries": {"count": 1, "backoff_min_s": 0.2, "on_disconnect": True},
            "request_timeout_s": 1, "stream_timeout_s": 1, "total_deadline_s": 3, "ttft_overhead_ms": 50,
            "routing": {m: {"strategy": st, "deployments": dict(deps)} for m, (st, deps) in ROUTING.items()},
            "aliases": {"provider_prefixes": {"mockprefix/": "oc"}},
            "request_id": {"header": "x-request-id", "echoes": True, "forwarded": True},
            "max_body_bytes": 1024 * 1024,
            "health": {"liveness_path": "/health/liveliness", "deployments_path": "/health/deployments"},
        },
    }, "growth harness.yaml")


def run_claim(claim_id: str, urls: dict[str, str], breaks: frozenset[str]) -> base.Verdict:
    cfg = harness_config("http://placeholder")
    deployments = {m.name: (urls[m.provider], m.upstream) for m in cfg.models if m.name not in ROUTING}
    groups = {m: (st, [(urls[p], m, w) for p, w in deps]) for m, (st, deps) in ROUTING.items()}
    spec = Spec(deployments=deployments, fallbacks=cfg.promises.fallbacks, keys={KEY}, breaks=set(breaks),
                special_fallbacks={"context_length_exceeded": cfg.promises.context_window_fallbacks,
                                   "content_policy_violation": cfg.promises.content_policy_fallbacks},
                groups=groups, prefixes={"mockprefix/": urls["oc"]}, stream_timeout_s=1, timeout_s=1)
    gw = Running(spec)
    try:
        cfg = harness_config(gw.url)
        providers = {p.name: ProviderControl(p.name, urls[p.name], refuses=p.refuses_connections) for p in cfg.providers}
        return gw.judge(cfg, ALL[claim_id], providers, KEY)
    finally:
        gw.stop()


def _switches(variant: frozenset[str], claim_id: str) -> frozenset[str]:
    """A switch written `name-` takes `name` away from the claim's reference."""
    ref = REFERENCE.get(claim_id, frozenset())
    minus = {s[:-1] for s in variant if s.endswith("-")}
    return (ref | {s for s in variant if not s.endswith("-")}) - minus


@pytest.mark.parametrize("claim_id", sorted(BREAKS, key=catalog.id_key))
def test_claim_passes_when_the_promise_is_kept(claim_id, world):
    v = run_claim(claim_id, world, REFERENCE.get(claim_id, frozenset()))
    assert v.status == "PASS", (v.status, v.reason, v.evidence)


@pytest.mark.parametrize("claim_id,variant", [(c, v) for c in sorted(BREAKS, key=catalog.id_key) for v, _ in BREAKS[c]],
                         ids=lambda x: "+".join(sorted(x)) if isinstance(x, frozenset) else x)
def test_claim_fails_when_the_promise_is_broken(claim_id, variant, world):
    expected = dict(BREAKS[claim_id])[variant]
    v = run_claim(claim_id, world, _switches(variant, claim_id))
    assert v.status == expected, (sorted(variant), v.status, v.reason, v.evidence)
    phrase = REASONS.get((claim_id, "+".join(sorted(variant))))
    assert phrase is None or phrase in v.reason, v.reason
