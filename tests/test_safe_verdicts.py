"""SAFE, both ways: a gateway that does not fail over on a 503 it promised to fail over on, but
hands the caller a clean, well-formed error at once, broke the promise safely: SAFE, never PASS
and never FAIL; the same gateway answering an error no OpenAI client can read is a FAIL."""
from __future__ import annotations

import pytest

from faulty_gateway import Running, Spec
from harness.checks import base
from harness.client.control import ProviderControl
from harness.client.http import GatewayClient
from test_resilience_both_ways import CLAIMS, KEY, harness_config, world  # noqa: F401 - the fixture, too


def judge(urls, claim_id: str, **spec) -> base.Verdict:
    cfg0 = harness_config("http://placeholder", urls)
    deployments = {m.name: (urls[m.provider], m.upstream) for m in cfg0.models}
    gw = Running(Spec(deployments=deployments, fallbacks=cfg0.promises.fallbacks, keys={KEY}, **spec))
    try:
        cfg = harness_config(gw.url, urls)
        client = GatewayClient(gw.url, "Authorization", f"Bearer {KEY}", read_s=20, request_s=30, stream_s=30)
        providers = {p.name: ProviderControl(p.name, urls[p.name], refuses=p.refuses_connections) for p in cfg.providers}
        claim = CLAIMS[claim_id]
        return base.run(base.CheckContext(cfg, client, providers, KEY, claim_id), claim.check, dict(claim.params))
    finally:
        gw.stop()


@pytest.mark.parametrize("claim_id", ["CM-5.1.10", "CM-5.1.9"])   # failover promised on 503 and on 502
def test_no_failover_but_a_clean_error_is_safe(world, claim_id):  # noqa: F811 - pytest's fixture
    kept = judge(world, claim_id)
    assert kept.status == "PASS", kept.reason
    safe = judge(world, claim_id, failover_on=set())
    assert safe.status == "SAFE", (safe.status, safe.reason)
    assert "did not happen, but the caller got a clean HTTP" in safe.reason
    unreadable = judge(world, claim_id, failover_on=set(), breaks={"error_not_openai_shaped"})
    assert unreadable.status == "FAIL" and "did not happen: HTTP" in unreadable.reason, unreadable.reason
