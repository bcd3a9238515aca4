"""The published-schema claims (CM-27), both ways: PASS against the reference gateway (tests/faulty_gateway.py
with no break) and against each mock provider straight, which speak the protocols as published; FAIL, with
the field and the spec's component in the reason, against the gateway with one schema switch on."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness import catalog
from harness.checks import base
from harness.client.control import ProviderControl
from harness.client.http import GatewayClient
from harness.client.sse import SSEEvent
from harness.config import parse
from harness.oracles import schemas as sc
from harness.paths import MATRICES
from test_growth_both_ways import ALL, run_claim, world  # noqa: F401 - the fixture, too

CLAIMS = [c.id for c in catalog.load_file(MATRICES / "claims" / "27-published-schemas.yaml")]
# claim id -> (the switch that breaks it, a phrase its FAIL reason must have)
BREAKS = {
    "CM-27.1": ("chat_nulls_omitted", "choices[0].message.refusal: required, missing (ChatCompletionResponseMessage)"),
    "CM-27.2": ("chat_nulls_omitted", "choices[0].finish_reason: required, missing (CreateChatCompletionStreamResponse)"),
    "CM-27.3": ("responses_fields_dropped", "tools: required, missing (Response)"),
    "CM-27.4": ("responses_fields_dropped", "(response.created) sequence_number: required, missing (ResponseCreatedEvent)"),
    "CM-27.5": ("anthropic_fields_dropped", "stop_sequence: required, missing (Message)"),
    "CM-27.6": ("anthropic_fields_dropped", "(content_block_delta) index: required, missing (RawContentBlockDeltaEvent)"),
    "CM-27.7": ("error_fields_dropped", "error.param: required, missing (Error)"),
    "CM-27.8": ("error_fields_dropped", "error.code: required, missing (Error)"),
    "CM-27.9": ("anthropic_error_openai_shaped", "type: required, missing (ErrorResponse)"),
}


def test_every_schema_claim_is_tested_both_ways():
    assert set(BREAKS) == set(CLAIMS) and len(CLAIMS) == 9


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_passes_against_the_reference_gateway(claim_id, world):  # noqa: F811 - pytest's fixture
    v = run_claim(claim_id, world, frozenset())
    assert v.status == "PASS", (v.status, v.reason, v.evidence)


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_fails_with_the_schema_broken(claim_id, world):  # noqa: F811 - pytest's fixture
    switch, phrase = BREAKS[claim_id]
    v = run_claim(claim_id, world, frozenset({switch}))
    assert v.status == "FAIL", (switch, v.status, v.reason, v.evidence)
    assert phrase in v.reason, v.reason
    assert v.evidence["schema"].startswith("harness/schemas/") and v.evidence["violations"]


def _straight(url: str, provider: dict, protocols: list[str]) -> tuple:
    """A config whose 'gateway' is the mock provider itself."""
    model = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-20241022"}[provider["kind"]]
    cfg = parse({"target": {"name": "mock", "url": url, "auth": {"header": "x-api-key", "scheme": None, "key": "sk-mock"},
                            "protocols": protocols},
                 "providers": [provider], "models": [{"name": model, "provider": provider["name"]}]}, "mock harness.yaml")
    client = GatewayClient(url, "x-api-key", "sk-mock", read_s=20, request_s=30, stream_s=30)
    return cfg, client, {provider["name"]: ProviderControl(provider["name"], url)}


@pytest.mark.parametrize("claim_id", CLAIMS)
def test_passes_straight_at_the_mock_provider(claim_id, world):  # noqa: F811 - pytest's fixture
    claim = ALL[claim_id]
    protocol = claim.params["protocol"]
    name, kind = ("an", "anthropic") if protocol == "anthropic_messages" else ("oa", "openai")
    cfg, client, providers = _straight(world[name], {"name": name, "kind": kind}, [protocol])
    v = base.run(base.CheckContext(cfg, client, providers, "sk-mock", claim_id), claim.check, dict(claim.params))
    assert v.status == "PASS", (v.status, v.reason, v.evidence)


def test_a_protocol_not_offered_is_unsupported_and_nothing_is_sent(world):  # noqa: F811 - pytest's fixture
    """The 'gateway' is the OpenAI mock, which would answer (and journal) a Responses request: the
    claims on a protocol the config does not offer must send it nothing at all."""
    cfg, client, providers = _straight(world["oa"], {"name": "oa", "kind": "openai"}, ["openai_chat"])
    last = providers["oa"].journal(last=1)
    since = last[0]["seq"] if last else 0
    for claim_id in ("CM-27.3", "CM-27.4", "CM-27.8"):
        claim = ALL[claim_id]
        v = base.run(base.CheckContext(cfg, client, providers, "sk-mock", claim_id), claim.check, dict(claim.params))
        assert v.status == "UNSUPPORTED" and "does not offer the OpenAI Responses API" in v.reason, v.reason
    assert providers["oa"].journal(since_seq=since) == []


def test_a_done_sentinel_in_a_responses_stream_is_named_as_such():
    """Chat completions' `data: [DONE]` carried into a Responses stream (LiteLLM does): the reason
    says what it is, not that some data is not JSON."""
    assert sc.response_events([SSEEvent("[DONE]")]) == [
        "event 1: a [DONE] sentinel, which the Responses stream does not have"]
    assert not any("not JSON" in v for v in sc.response_events([SSEEvent("{}"), SSEEvent("[DONE]")]))
    assert sc.response_events([SSEEvent("[DONE")]) == ["event 1: data is not JSON: '[DONE'"]   # other garbage as before


def test_no_check_or_oracle_imports_a_private_name():
    """A helper two modules share is public (stream_evidence was openai_stream._evidence): a private
    name is free to change without looking for users elsewhere."""
    root = Path(base.__file__).resolve().parent.parent
    private = [f"{p.relative_to(root)}: from {node.module} import {a.name}"
               for p in sorted([*(root / "checks").glob("*.py"), *(root / "oracles").glob("*.py")])
               for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.ImportFrom)
               for a in node.names if a.name.startswith("_") and node.module != "__future__"]
    assert private == []
