"""End to end against a real LiteLLM proxy: `harness run` on the embedded default, report checked.

The LiteLLM findings pinned here are real deviations of LiteLLM from OpenAI's behaviour, found by
the harness; if a LiteLLM release fixes one, this test fails and the pin must move.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from junitparser import Failure, JUnitXml, Skipped

from test_smoke_matrix import GEMINI_ID_CELLS, LITELLM_TOOL_FINDINGS

from harness.world.processes import port_is_open

pytestmark = pytest.mark.e2e

# claim id -> a phrase the evidence must contain. Each one breaks a promise that is LiteLLM's own: the
# source of each is in promises.sources of harness/targets/litellm.yaml (resilience, auth, usage) or in
# OpenAI's API reference, the API LiteLLM's proxy serves (the conformance claims); README, "LiteLLM's
# findings and their sources".
LITELLM_FINDINGS = {
    # The final usage chunk carries choices [{"index": 0, "delta": {}}] instead of [].
    "CM-10.2.7": "the usage chunk should have choices: []",
    # stream_options without stream is accepted (and dropped) instead of refused with a 400.
    "CM-10.2.9": "status should be 4xx for a client error, got 200",
    # A JSON array as the body crashes the proxy: 500 "Internal Server Error" in plain text.
    "CM-15.1.4": "got 500",
    # A message without a role is accepted (LiteLLM fills one in) instead of refused.
    "CM-15.1.7": "status should be 4xx for a client error, got 200",
    # Without a DB, a missing key crashes the auth handler: plain-text 500 "Internal Server Error".
    "CM-1.1": "got HTTP 500",
    # A wrong key is answered 400 "No connected db." instead of 401.
    "CM-1.2": "got HTTP 400",
    "CM-1.3": "got HTTP 500",
    # allowed_fails: 2 documents a cooldown after more than 2 failed calls; the deployment kept its traffic:
    # in the proxy a request's retries share one logging object, so a failed retry is never counted.
    "CM-5.3.2": "after 3 failures the provider still got",
    "CM-5.3.8": "the breaker never opened",
    # New: a plain answer whose provider sent no usage reports 0/0/0 tokens (LiteLLM estimates only in streams,
    # CM-14.2 passes); it used to pass because zeros add up, and the check now tells zeros from an estimate.
    "CM-14.1": "zeros, not an estimate",
    # Issue 15's claims. A provider's 400 context_length_exceeded / content_policy_violation (OpenAI's bodies)
    # reaches the caller as a 400 whose error.code is "400": the code a client acts on is lost.
    "CM-5.6.1": "error.code is '400', the provider said 'context_length_exceeded'",
    "CM-5.6.2": "error.code is '400', the provider said 'content_policy_violation'",
    "CM-5.6.3": "error.code is '400', the provider said 'context_length_exceeded'",
    # content_policy_fallbacks never fire for OpenAI's content_policy_violation 400: the exception mapping
    # (exception_mapping_utils.py:380-383) reads the message ("the safety system"; OpenAI says "our safety
    # system") and not error.code, so it is a plain BadRequestError and goes down the generic chain.
    "CM-5.6.5": "went down the generic chain (['cp-generic']), not the one made for it (['cp-safe'])",
    "CM-5.6.7": "went down the generic chain (['cp-generic']), not the one made for it (['cp-safe'])",
    # A provider stream whose body ends cleanly mid-answer (no finish_reason, no [DONE]) reaches the caller
    # with finish_reason "stop" and [DONE]: a truncated answer passed off as complete.
    "CM-5.8.6": "reached the caller as complete ([DONE], finish_reason 'stop')",
    # With a wildcard provider route (mockprefix/* -> openai/*, for CM-17.5), /v1/models expands it from the
    # cost map and lists some names twice (mockprefix/sora-2 ...).
    "CM-9.1.4": "more than once",
    # The published schemas (CM-27; offering the protocol is the promise: promises.sources protocols.*). Chunks go
    # out through _serialize_streaming_chunk (litellm/proxy/proxy_server.py:9714-9717, 9744-9750:
    # exclude_none) and lose the finish_reason: null a chunk choice must carry; the Responses events lose the
    # response's error, incomplete_details and instructions (null), and the stream ends with data: [DONE]
    # (proxy_server.py:10155, 10215-10217)@1.108.7.
    "CM-27.2": "choices[0].finish_reason: required, missing (CreateChatCompletionStreamResponse)",
    "CM-27.4": "(response.created) response.error: required, missing (Response)",
    # No longer findings, the promises were not LiteLLM's:
    # CM-2.3 (429 without Retry-After): LiteLLM sends none on a deployment-rpm 429, only when every deployment
    #   cools down; the promise is now headers: [], and the claim UNSUPPORTED.
    # CM-5.1.1 (failed over on 400): LiteLLM fails over on every provider error, a 400 included
    #   (fallback_on_unsupported_params defaults True); the promise is now all-non-2xx, and the claim passes.
}
# What LiteLLM does not promise in this offline setup: reported, never counted as a pass.
# CM-5.2.7 and CM-5.2.8 left it: LiteLLM backs off (0.5 s * 2^n + jitter) and honours Retry-After (<= 60 s)
# before a retry on the same deployment, now promised, and both pass. CM-2.3 joined it (no header promised).
LITELLM_UNSUPPORTED = {"CM-1.4", "CM-1.5", "CM-2.3", "CM-5.3.5", "CM-5.3.7", "CM-5.3.9", "CM-5.3.10",
                       "CM-6.4.1", "CM-6.4.2",
                       # one routing strategy per router (simple-shuffle with weights here: CM-18.1 passes);
                       # x-litellm-call-id is not promised upstream, nor in its log for a success (CM-23.10: only a
                       # failed request's id is written at ERROR); max_request_size_mb is premium-only
                       "CM-18.2", "CM-18.3", "CM-18.4", "CM-23.5", "CM-23.10", "CM-24.7",
                       # no documented bound on memory, descriptor or thread growth: measured, reported
                       "CM-26.5", "CM-26.6", "CM-26.7",
                       # client keys: LiteLLM's key endpoints need a database, and this target runs none
                       "CM-28.1", "CM-28.2", "CM-28.3", "CM-28.4", "CM-28.5"}
# Advisory claims (rescue vs clean error): a clean, bounded error where a rescue was possible is PARTIAL.
# A malformed event inserted into the provider's stream ends LiteLLM's stream with an error event
# (APIConnectionError), although every event of the answer but that one had arrived.
LITELLM_PARTIAL = {"CM-5.8.8": "a clean error, not a rescue"}
MISSING: set[str] = set()   # every claim in the catalog has a check
# Not judged, with the reason: claims about an open breaker (after its cooldown, independent of another)
# need one that opened, and LiteLLM's never does here (CM-5.3.2); they once PASSed without it.
LITELLM_NOT_JUDGED = {"CM-5.3.3", "CM-5.3.4", "CM-5.3.6"}
# Every chaos scenario's status, pinned exactly: LiteLLM degrades as promised in each. CM-19.3 and
# CM-19.4 used to flip (ERROR/FAIL in some -n 2 runs): scenarios ran at the same time on two xdist
# workers, one's faults hitting the other's requests; one at a time, 0 flips in 19 runs (13 of them -n 2).
CHAOS_PINNED = dict.fromkeys([*(f"CM-19.{i}" for i in range(1, 13)), *(f"CM-20.{i}" for i in range(1, 5))], "PASS")


@pytest.fixture(scope="module")
def litellm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e")
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "-o", str(out), "-n", "2"],
                          capture_output=True, text=True, timeout=900)
    return out, proc


def test_run_exits_1_because_litellm_deviates(litellm_run):
    out, proc = litellm_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_every_claim_has_a_verdict_and_findings_are_pinned(litellm_run):
    out, _ = litellm_run
    results = json.loads((out / "results.json").read_text())
    by_id = {c["id"]: c for c in results["claims"] if c["lane"] != "Smoke"}
    assert len(results["claims"]) == len(results["catalog"]) >= 40 and not results["partial"]
    assert "NOT RUN" not in {c["status"] for c in results["claims"]}
    assert results["gateway"]["source"] == "Python package litellm" and re.match(r"\d+\.\d+", results["gateway"]["version"])
    failed = {cid for cid, c in by_id.items() if c["status"] == "FAIL" and c["lane"] not in ("Chaos", "Load")}
    assert failed == set(LITELLM_FINDINGS), {cid: by_id[cid]["reason"] for cid in failed}
    for cid, phrase in LITELLM_FINDINGS.items():
        assert phrase in by_id[cid]["reason"], by_id[cid]["reason"]
        assert by_id[cid]["evidence"], cid
    assert {cid for cid, c in by_id.items() if c["status"] == "UNSUPPORTED"} == LITELLM_UNSUPPORTED
    assert {cid for cid, c in by_id.items() if c["status"] == "MISSING"} == MISSING
    assert {cid for cid, c in by_id.items() if c["status"] == "PARTIAL"} == set(LITELLM_PARTIAL)
    for cid, phrase in LITELLM_PARTIAL.items():
        assert phrase in by_id[cid]["reason"], by_id[cid]["reason"]
    not_judged = {cid: c["reason"] for cid, c in by_id.items() if c["status"] == "ERROR" and c["lane"] != "Chaos"}
    assert set(not_judged) == LITELLM_NOT_JUDGED, not_judged
    assert all("the breaker did not open" in why for why in not_judged.values()), not_judged
    # The chaos lane ran through the embedded fault proxy, with its timing evidence.
    chaos = {cid: c for cid, c in by_id.items() if c["lane"] == "Chaos" and cid not in MISSING}
    assert {cid: c["status"] for cid, c in chaos.items()} == CHAOS_PINNED, \
        {cid: (c["status"], c["reason"]) for cid, c in chaos.items() if c["status"] != CHAOS_PINNED.get(cid)}
    for cid, c in chaos.items():
        if c["check"] == "chaos.scenario":
            assert c["evidence"]["elapsed_s"] <= c["evidence"]["bound_s"] + 10 and "bound_s" in c["evidence"], cid
    # The load lane ran last, alone: stream buffering and the (generous) gates of the embedded config.
    load = {cid: c for cid, c in by_id.items() if c["lane"] == "Load"}
    assert sorted(load) == ["CM-21.1", "CM-21.2", "CM-21.3", "CM-21.4"], sorted(load)
    # LiteLLM holds streams back (see tests/test_load_lane.py): a finding, pinned.
    # Two profiles (smoke, and a fanout on the Responses API): each claim is judged in both.
    assert load["CM-21.1"]["status"] == "FAIL" and all(
        "ttft_share_of_stream_gateway" in e for e in load["CM-21.1"]["evidence"]["profiles"])
    for cid in ("CM-21.2", "CM-21.3", "CM-21.4"):
        assert load[cid]["status"] == "PASS" and all(e["requests"] > 20 for e in load[cid]["evidence"]["profiles"]), (
            cid, load[cid]["reason"])
    ld, fan = results["load"]   # one entry per profile
    assert ld["profile"]["name"] == "smoke" and ld["runs"]["gateway"]["table"]["ttft"]["count"] > 20 and ld["overhead"]["ttft"]
    assert ld["hops"]["gateway"]["matched"] >= 0.95 * ld["runs"]["gateway"]["table"]["ttft"]["count"]   # per-hop
    assert fan["profile"]["name"] == "responses-fanout" and fan["runs"]["gateway"]["table"]["fan"]["count"] >= 5
    # Everything else conforms, resilience sections included.
    others = {cid: c["status"] for cid, c in by_id.items()
              if cid not in set(LITELLM_FINDINGS) | LITELLM_UNSUPPORTED | LITELLM_NOT_JUDGED | set(LITELLM_PARTIAL)
              | MISSING | set(chaos) | set(load)}
    assert set(others.values()) == {"PASS"}, {k: (v, by_id[k]["reason"]) for k, v in others.items() if v != "PASS"}
    for section in ("5.1 Failover", "5.2 Retries", "5.3 Circuit breaker / cooldown", "5.4 Timeouts",
                    "2. Rate limiting", "8. Caching"):
        assert any(c["section"] == section and c["status"] == "PASS" for c in by_id.values()), section


def test_the_terminal_is_short_and_says_the_decision(litellm_run):
    _, proc = litellm_run
    lines = proc.stdout.splitlines()
    assert len(lines) < 60, proc.stdout
    assert any(line.startswith("Release gate: BLOCKED") for line in lines), proc.stdout
    assert "Findings by cause" in proc.stdout and "report: " in proc.stdout and "{" not in proc.stdout   # no JSON dumps


def test_reports_are_written(litellm_run):
    out, _ = litellm_run
    md = (out / "report.md").read_text()
    first = [line for line in md.splitlines() if line.strip()][:2]
    assert first[0].startswith("# Gateway test report: litellm-proxy") and first[1].startswith("**Release gate: BLOCKED**")
    assert md.index("## Themes") < md.index("## Findings by cause") < md.index("## Coverage heatmap by section")
    assert "10.2 OpenAI chat completions: streaming" in md and "CM-10.2.7" in md
    # LiteLLM's auth findings are one cause, with the lines of its own log that explain them.
    results = json.loads((out / "results.json").read_text())
    auth = next(c for c in results["causes"] if "CM-1.1" in c["ids"])
    assert {"CM-1.1", "CM-1.2", "CM-1.3"} <= set(auth["ids"]) and auth["log_lines"], results["causes"]
    assert all("user_api_key_auth" in line for line in auth["log_lines"]), auth
    assert "user_api_key_auth" in md.split("## Findings by cause")[1].split("### Cause 2")[0]
    assert "## Findings by cause" in md and "CM-5.3.2" in md.split("## Findings by cause")[1]
    assert "| 19. Chaos: upstream network faults | Chaos |" in md
    assert "## Load: profile smoke" in md and "Overhead of the gateway" in md and "**Measured**: Load profile smoke" in md
    html = (out / "report.html").read_text()
    assert 'id="CM-15.1.4"' in html and 'id="load-smoke"' in html and (out / "load" / "smoke" / "load.json").exists()
    # JUnit, read with a JUnit library: one suite per lane, every record a case, only PASS a pass.
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    suites = {s.name: s for s in xml}
    assert {"Conformance", "Resilience", "Chaos", "Load", "Smoke"} <= set(suites)
    # Red: the plain chat cells of the Gemini routes (LiteLLM passes Gemini's responseId on as the id), the
    # streamed tool cells' usage chunk (CM-10.2.7's cause) and the catalog check of a chain through a Gemini
    # route (tests/test_smoke_matrix.py pins the reasons). 66 text cells, 60 tool cells, 4 catalog checks.
    assert suites["Smoke"].tests == 130
    assert suites["Smoke"].failures == len(GEMINI_ID_CELLS) + len(LITELLM_TOOL_FINDINGS) + 1
    cases = {c.name: c for s in xml for c in s}
    assert len(cases) == len(results["claims"])
    statuses = {c["test"] + f"[{c['id']}]": c["status"] for c in results["claims"]}
    for name, case in cases.items():
        status = statuses[name]
        if status == "PASS":
            assert case.result == [], name
        elif status in ("FAIL", "SAFE"):
            assert isinstance(case.result[0], Failure), name
        elif status in ("UNSUPPORTED", "MISSING"):
            assert isinstance(case.result[0], Skipped), name
    # The provider smoke matrix ran behind a gateway of its own, linked to its evidence, green but for Gemini's ids.
    red = {(c["row"], c["protocol"], c["stream"], c.get("case", "text")) for c in results["smoke"]["cells"]
           if c["status"] != "PASS"}
    assert red == {(*k, "text") for k in GEMINI_ID_CELLS} | set(LITELLM_TOOL_FINDINGS), red
    assert len(results["smoke"]["cells"]) == 126
    assert "## Provider smoke matrix: default" in md and 'href="smoke/smoke.html#ev-65"' in html
    assert (out / "smoke" / "smoke.html").exists()


def test_no_key_in_any_output(litellm_run):
    out, proc = litellm_run
    config = next(out.glob("logs/*.log"), None)
    assert config is not None, "gateway logs are kept"
    texts = [p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()] + [proc.stdout, proc.stderr]
    for text in texts:
        assert not re.search(r"sk-harness-[0-9a-f]{8,}", text)


def test_everything_stopped_after_the_run(litellm_run):
    _, proc = litellm_run
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)(?!\d)(?! \(refuses)", proc.stdout)]
    assert len(ports) >= 5   # the mock providers and the gateway
    assert not [p for p in ports if port_is_open("127.0.0.1", p)]
