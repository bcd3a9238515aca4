"""The issue's setup, run for real: a harness.yaml whose default model sits behind LiteLLM's `ollama/`
prefix (Ollama's /api/generate), with a fallback behind `ollama_chat/`, the whole claim catalog
through `harness run` (tests/fixtures/litellm_ollama/).

- As shipped, the mock serves every route LiteLLM calls: no claim is FAIL because of the mock.
  What FAILs is LiteLLM's own behaviour (each listed below with why), tool claims are UNSUPPORTED
  (/api/generate has no tools), and the claims the issue saw failing for the mock's sake pass.
- With the route missing (the provider behind `ollama/` is an OpenAI-shaped mock, which does not
  serve /api/generate), every claim whose traffic hit it is ERROR "not judged" naming the route,
  and none of them is FAIL."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).parent / "fixtures" / "litellm_ollama"
# LiteLLM 1.108.7's own deviations through this config (none comes from the mock: no route unserved).
LITELLM_FAILS = {
    "CM-1.1": "no key: LiteLLM answers 500 (its auth handler)",
    "CM-1.2": "a wrong key: LiteLLM answers 400",
    "CM-1.3": "an empty auth header: LiteLLM answers 500",
    "CM-10.2.7": "its usage chunk has choices [{index 0, delta {}}], not []",
    "CM-10.2.9": "stream_options without stream: true is sent on to /api/generate and answered 200",
    "CM-15.1.4": "a JSON body that is not an object: LiteLLM answers 500",
    "CM-15.1.7": "a message without a role is written into the prompt and answered 200",
    "CM-15.1.8": "temperature 'warm' is sent on to Ollama, whose 500 reaches the client",
    # Issue 15's claims. /api/generate's done_reason "length" (num_predict reached) becomes finish_reason
    # "stop", plain and streamed: llms/ollama/completion/transformation.py:325-379 writes "stop" whatever
    # Ollama said (the ollama_chat/ route maps done_reason: llms/ollama/chat/transformation.py:359).
    "CM-10.5.4": "a stream cut by max_tokens says finish_reason stop, not length",
    "CM-10.5.5": "an answer cut by max_tokens says finish_reason stop, not length",
    # A stream that ends cleanly mid-answer is passed off as complete (as through openai/, CM-5.8.6 there).
    "CM-5.8.6": "a truncated stream ends with finish_reason stop and [DONE]",
    # The published schemas (CM-27; README, "LiteLLM's findings"). Through ollama/ the plain answers lack
    # fields the OpenAI spec requires (nullable), beside the chunks' and Responses events' missing fields
    # that every route shows (exclude_none, proxy/proxy_server.py:9714-9717, 9744-9750).
    "CM-27.1": "a chat answer has no choices[0].logprobs and no message.refusal",
    "CM-27.2": "chunks without finish_reason: null",
    "CM-27.3": "a Responses output_text without logprobs; usage's token details null",
    "CM-27.4": "the Responses events' response without error, incomplete_details, instructions",
}
# The claims the issue saw FAIL for the mock's sake (a 404 at /api/generate): judged and passing now.
ISSUE_CLAIMS = ["CM-16.1", "CM-10.1.8", "CM-10.1.9", "CM-10.1.10", "CM-10.2.10", "CM-10.2.13", "CM-16.2"]
TOOL_CLAIMS = ["CM-10.1.11", "CM-10.1.12", "CM-10.2.11", "CM-10.2.12"]


def harness_run(cfg: Path, out: Path) -> dict[str, dict]:
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--config", str(cfg), "-o", str(out), "-n", "2",
                           "--no-load", "--no-smoke"], capture_output=True, text=True, timeout=900)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    return {r["id"]: r for r in records if "status" in r and str(r.get("id", "")).startswith("CM-")}


def test_a_default_model_behind_ollama_generate_gets_no_fail_from_the_mock(tmp_path):
    got = harness_run(FIXTURE / "harness.yaml", tmp_path / "out")
    assert len(got) > 100
    fails = {i: r["reason"] for i, r in got.items() if r["status"] == "FAIL"}
    assert set(fails) == set(LITELLM_FAILS), fails
    assert "500" in fails["CM-15.1.8"] and "200" in fails["CM-15.1.7"]
    assert "choices[0].logprobs: required, missing" in fails["CM-27.1"] and "refusal: required" in fails["CM-27.1"]
    assert "usage.input_tokens_details: should be object, got null" in fails["CM-27.3"]
    assert not [i for i, r in got.items() if r["status"] == "ERROR"], {i: r["reason"] for i, r in got.items()
                                                                       if r["status"] == "ERROR"}
    assert not any("unserved" in (r.get("evidence") or {}) for r in got.values())
    for cid in ISSUE_CLAIMS:
        assert got[cid]["status"] == "PASS", (cid, got[cid]["reason"])
    for cid in TOOL_CLAIMS:
        assert got[cid]["status"] == "UNSUPPORTED", (cid, got[cid]["reason"])
        assert got[cid]["reason"].startswith("the gateway sent this claim's request to POST /api/generate on provider "
                                             "ollama-local (ollama), a route of that API without tool calls"), got[cid]["reason"]


def test_a_missing_mock_route_is_not_judged_and_named(tmp_path):
    cfg_dir = tmp_path / "cfg"
    shutil.copytree(FIXTURE, cfg_dir)
    text = (cfg_dir / "harness.yaml").read_text()
    # The provider behind `ollama/` is now an OpenAI-shaped mock: it does not serve /api/generate.
    text = text.replace("- {name: ollama-local, kind: ollama}", "- {name: ollama-local, kind: openai}")
    (cfg_dir / "harness.yaml").write_text(text)
    got = harness_run(cfg_dir / "harness.yaml", tmp_path / "out")
    named = ("not judged: the gateway called POST /api/generate on provider ollama-local (openai), which the mock "
             "does not serve: claims on its models (local-llama) are not judged")
    errors = {i: r for i, r in got.items() if r["status"] == "ERROR"}
    for cid in ISSUE_CLAIMS + TOOL_CLAIMS + ["CM-10.1.1", "CM-10.2.3", "CM-10.2.7"]:
        assert cid in errors and errors[cid]["reason"] == named, (cid, got[cid]["status"], got[cid]["reason"])
        assert errors[cid]["evidence"]["unserved"][0]["path"] == "/api/generate"
    assert all(r["reason"] == named for r in errors.values()), {i: r["reason"] for i, r in errors.items()}
    # No FAIL on a claim whose traffic hit the missing route; what still FAILs never reached a provider.
    fails = {i for i, r in got.items() if r["status"] == "FAIL"}
    assert fails <= {"CM-1.1", "CM-1.2", "CM-1.3", "CM-15.1.4"}, fails
    report = (tmp_path / "out" / "report.md").read_text()
    assert re.search(r"called POST /api/generate on provider ollama-local \(openai\), which the mock does not serve", report)
