"""Findings grouped by root cause (harness/report/causes.py), over a synthetic gateway log.

The log is written in LiteLLM's format ("HH:MM:SS - Proxy:ERROR: file.py:N - module.fn(): what - message"),
and every finding's window is placed on that clock, so each test controls which lines a check could see.
"""
from __future__ import annotations

import datetime as dt
import json

from harness.report.causes import GatewayLog, group, signature_of_line
from harness.results.record import Record, Status

NOON = dt.datetime.now().replace(hour=12, minute=0, second=0, microsecond=0)


def at(second: int) -> float:
    return (NOON + dt.timedelta(seconds=second)).timestamp()


def clock(second: int) -> str:
    return (NOON + dt.timedelta(seconds=second)).strftime("%H:%M:%S")


AUTH = "auth_exception_handler.py:207 - litellm.proxy.proxy_server.user_api_key_auth(): Exception occured"
FALLBACK = "router.py:8226 - litellm.router.py::async_function_with_fallbacks() - Error occurred while trying to do fallbacks"
TOKENS = "router.py:512 - litellm.router.py::_acount_pre_call_check_tokens: failed to count tokens"


def line(second: int, where: str, message: str) -> str:
    return f"{clock(second)} - LiteLLM Proxy:ERROR: {where} - {message}"


def finding(rid: str, section: str, second: int, body: str, status: int = 500, reason: str = "") -> Record:
    return Record(id=rid, lane="Conformance", section=section, status=Status.FAIL, check=rid.lower(),
                  reason=reason or f"{rid} got HTTP {status}", started_at=at(second), finished_at=at(second),
                  evidence={"exchange": {"status": status, "body": body}})


def groups_of(tmp_path, log_lines, findings):
    path = tmp_path / "gateway.log"
    path.write_text("\n".join(log_lines) + "\n")
    return {tuple(sorted(r.id for r in g["records"])): g for g in group(findings, GatewayLog(path))}


BARE = json.dumps({"error": {"message": "Internal Server Error"}})


def test_a_bare_500_is_explained_by_its_own_sections_line_not_by_one_another_check_wrote_that_second(tmp_path):
    # At second 10 the auth check's bare 500 shares its second with a routing check's fallback error;
    # the routing finding's own text confirms the fallback line, an auth finding's text the auth line.
    log = [line(10, AUTH, "No api key passed in."),
           line(10, FALLBACK, "litellm.BadRequestError: OpenAIException - temperature must be a number"),
           line(20, AUTH, "No connected db."),
           line(30, FALLBACK, "litellm.BadRequestError: OpenAIException - scripted refusal")]
    found = [finding("CM-1.1", "1. Auth", 10, BARE),
             finding("CM-1.2", "1. Auth", 20, json.dumps({"error": {"message": "No connected db."}}), 400),
             finding("CM-5.6.2", "5.6 Fallbacks", 30,
                     json.dumps({"error": {"message": "litellm.BadRequestError: OpenAIException - scripted refusal"}}), 400)]
    groups = groups_of(tmp_path, log, found)
    assert set(groups) == {("CM-1.1", "CM-1.2"), ("CM-5.6.2",)}, list(groups)
    auth = groups[("CM-1.1", "CM-1.2")]
    assert auth["log_lines"] and all("user_api_key_auth" in text for _, text in auth["log_lines"]), auth["log_lines"]
    assert "user_api_key_auth" in auth["title"]


def test_a_bare_500_alone_in_its_second_is_explained_by_that_line(tmp_path):
    log = [line(10, TOKENS, "Got 'list'"), line(40, TOKENS, "Got 'dict'")]
    found = [finding("CM-15.1.4", "15. Errors", 10, BARE), finding("CM-15.1.5", "15. Errors", 40, BARE,
                                                                    reason="another reason entirely")]
    groups = groups_of(tmp_path, log, found)
    assert ("CM-15.1.4", "CM-15.1.5") in groups, list(groups)
    assert [n for n, _ in groups[("CM-15.1.4", "CM-15.1.5")]["log_lines"]] == [1, 2]


def test_a_bare_500_in_a_busy_second_that_no_finding_of_its_section_explains_is_not_merged(tmp_path):
    # Two unrelated error lines in its second, neither named by an error text of its section:
    # guessing would join it to whichever finding confirmed one of them.
    log = [line(10, TOKENS, "Got 'list'"),
           line(10, FALLBACK, "litellm.BadRequestError: OpenAIException - scripted refusal"),
           line(30, FALLBACK, "litellm.BadRequestError: OpenAIException - scripted refusal")]
    found = [finding("CM-15.1.4", "15. Errors", 10, BARE),
             finding("CM-5.6.2", "5.6 Fallbacks", 30,
                     json.dumps({"error": {"message": "litellm.BadRequestError: OpenAIException - scripted refusal"}}), 400)]
    groups = groups_of(tmp_path, log, found)
    assert set(groups) == {("CM-15.1.4",), ("CM-5.6.2",)}, list(groups)
    assert groups[("CM-15.1.4",)]["log_lines"] == []


def test_findings_explained_by_lines_that_differ_only_in_a_call_id_share_a_cause(tmp_path):
    where = "common_request_processing.py:1839 - litellm.proxy.proxy_server._handle_llm_api_exception(): Exception occured"
    log = [line(10, where, "litellm_call_id=b05da9c6-b5a0-49d3-a0f6-9c44bc9d7cbb - litellm.APIError - upstream said no"),
           line(30, where, "litellm_call_id=0e1f2a3b-c4d5-4e6f-8a9b-0c1d2e3f4a5b - litellm.APIError - upstream said no")]
    assert signature_of_line(log[0]) == signature_of_line(log[1])
    body = json.dumps({"error": {"message": "upstream said no"}})
    found = [finding("CM-5.1.1", "5.1 Retries", 10, body, 502, reason="one"),
             finding("CM-5.1.2", "5.1 Retries", 30, body, 502, reason="two")]
    assert ("CM-5.1.1", "CM-5.1.2") in groups_of(tmp_path, log, found)


def test_different_error_texts_in_different_sections_stay_apart(tmp_path):
    log = [line(10, AUTH, "No api key passed in."), line(30, TOKENS, "Got 'list'")]
    found = [finding("CM-1.1", "1. Auth", 10, json.dumps({"error": {"message": "No api key passed in."}}), 401),
             finding("CM-15.1.4", "15. Errors", 30, json.dumps({"error": {"message": "Got 'list'"}}), 400)]
    assert set(groups_of(tmp_path, log, found)) == {("CM-1.1",), ("CM-15.1.4",)}
