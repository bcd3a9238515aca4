"""The smoke matrix's tool-call cells both ways, without a gateway: each client protocol straight at a
mock provider of its own shape PASSes (one tool, two parallel calls, plain and streamed), and a relay
that breaks one thing on the way back (arguments, a collapsed index, the finish reason, usage) turns
the cell red with a reason that names it. A provider route that cannot carry tools is UNSUPPORTED.
The readers of the client's side never raise on garbage (the strategies of test_oracles_garbage)."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_oracles_garbage import (DONE, broken_streams, garbage_streams, json_values, keyed_dicts, mutated, sse_events,
                                  to_events)

from harness.client.control import ProviderControl
from harness.client.http import Exchange, GatewayClient
from harness.config import ConfigError, ProviderCfg
from harness.lanes.smoke import cell_id, cell_record
from harness.oracles import openai_stream as os_
from harness.smoke import cells
from harness.smoke import tools as tc
from harness.smoke.matrix import Matrix, Row, load_matrix
from harness.smoke.report import grid
from harness.world.mocks import start_mocks

PATHS = {"openai_chat": "/v1/chat/completions", "openai_responses": "/v1/responses", "anthropic_messages": "/v1/messages"}
OPENAI = Row("gpt-4o-mini", "openai", "openai", "gpt-4o-mini", 0.0, True)
ANTHROPIC = Row("claude-3-5-haiku-20241022", "anthropic", "anthropic", "claude-3-5-haiku-20241022", 0.0, True)
ROW = {"openai_chat": OPENAI, "openai_responses": OPENAI, "anthropic_messages": ANTHROPIC}


@pytest.fixture(scope="module")
def providers(tmp_path_factory):
    child, ports = start_mocks([ProviderCfg(name="openai", kind="openai"), ProviderCfg(name="anthropic", kind="anthropic"),
                                ProviderCfg(name="ollama", kind="ollama", models=["gpt-4o-mini"])],
                               tmp_path_factory.mktemp("tool-mocks"))
    yield {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    child.stop(grace_s=3)


class Relay:
    """A stand-in gateway: passes each request to the mock of its protocol's shape (Anthropic's
    messages to the Anthropic mock, the rest to the OpenAI one) and hands back the answer whole,
    each JSON payload (the body, or every SSE event) first given to `mutate`."""

    def __init__(self, upstreams: dict[str, str], mutate: Optional[Callable[[Any], None]] = None,
                 route: Optional[Callable[[str, dict[str, Any]], tuple[str, str, dict[str, Any], Callable]]] = None) -> None:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                base = upstreams["anthropic"] if self.path == "/v1/messages" else upstreams["openai"]
                path, back = self.path, None
                if route is not None:
                    base, path, body, back = route(self.path, body)
                headers = {k: v for k, v in self.headers.items() if k.lower().startswith(("anthropic-", "content-type"))}
                r = httpx.post(base + path, json=body, headers=headers, timeout=10)
                text = r.text if back is None else back(r.json())
                ctype = r.headers.get("content-type", "application/json")
                if "event-stream" in ctype:
                    text = re.sub(r"(?m)^data: (\{.*\})$", lambda m: "data: " + relay.apply(m.group(1)), text)
                elif back is None:
                    text = relay.apply(text)
                data = text.encode()
                self.send_response(r.status_code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.mutate = mutate
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def apply(self, text: str) -> str:
        if self.mutate is None:
            return text
        obj = json.loads(text)
        self.mutate(obj)
        return json.dumps(obj, separators=(",", ":"))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def gateway(url: str, providers: dict[str, str]) -> cells.Gateway:
    return cells.Gateway(GatewayClient(url, None, None), PATHS, {n: ProviderControl(n, u) for n, u in providers.items()})


def straight(providers: dict[str, str], protocol: str) -> str:
    return providers["anthropic"] if protocol == "anthropic_messages" else providers["openai"]


@pytest.mark.parametrize("case", ["tools", "parallel_tools"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("protocol", ["openai_chat", "openai_responses", "anthropic_messages"])
def test_each_protocol_straight_at_its_own_provider_passes(providers, protocol, stream, case):
    c = cells.run_cell(gateway(straight(providers, protocol), providers), ROW[protocol], protocol, stream, case)
    assert c["status"] == "PASS", c["reason"]
    assert c["case"] == case and f"wrote {2 if case == 'parallel_tools' else 1} tool call(s)" in c["reason"]
    n = 2 if case == "parallel_tools" else 1
    calls = c["evidence"]["client_calls"]
    assert [x["name"] for x in calls] == ["get_weather", "get_time"][:n] == [x["name"] for x in c["evidence"]["provider_calls"]]
    assert len({x["id"] for x in calls}) == len({str(x["index"]) for x in calls}) == n
    # What the mock writes for these schemas: a string, an integer, the enum's first value, a boolean.
    assert json.loads(json.dumps(calls[0]["arguments"]) if isinstance(calls[0]["arguments"], dict)
                      else calls[0]["arguments"]) == {"city": "alpha", "days": 1, "unit": "celsius"}
    up = c["evidence"]["upstream"][ROW[protocol].provider][0]
    assert up["usage"] and c["evidence"]["usage"] is not None


def _walk(obj: Any, fn: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(obj, dict):
        fn(obj)
        for v in obj.values():
            _walk(v, fn)
    elif isinstance(obj, list):
        for v in obj:
            _walk(v, fn)


def alter_arguments(obj: Any) -> None:
    def fn(d: dict[str, Any]) -> None:
        for k, v in d.items():
            if isinstance(v, str) and "alpha" in v and k not in ("text",):
                d[k] = v.replace("alpha", "omega")
    _walk(obj, fn)


def finish_stop(obj: Any) -> None:
    def fn(d: dict[str, Any]) -> None:
        if d.get("finish_reason") == "tool_calls":
            d["finish_reason"] = "stop"
        if d.get("stop_reason") == "tool_use":
            d["stop_reason"] = "end_turn"
        if d.get("object") == "response" and d.get("status") == "completed":   # the Responses API's equivalent
            d["status"] = "incomplete"
    _walk(obj, fn)


def collapse_index(obj: Any) -> None:
    """The second call takes the first one's place: its stream index (chat delta, Anthropic block,
    Responses output_index), or in a plain answer its id."""
    def fn(d: dict[str, Any]) -> None:
        calls = d.get("tool_calls")
        if isinstance(calls, list):
            for c in calls:
                if c.get("index") == 1:
                    c["index"] = 0
            if len(calls) == 2 and "id" in calls[0] and "function" in calls[1] and "index" not in calls[1]:
                calls[1]["id"] = calls[0]["id"]
        if d.get("type", "").startswith("content_block_") and d.get("index") == 1:
            d["index"] = 0
        if d.get("output_index") == 1:
            d["output_index"] = 0
        content = d.get("content") if d.get("type") == "message" else None
        uses = [b for b in content or [] if isinstance(b, dict) and b.get("type") == "tool_use"]
        if len(uses) == 2:
            uses[1]["id"] = uses[0]["id"]
        items = [i for i in d.get("output") or [] if isinstance(i, dict) and i.get("type") == "function_call"]
        if len(items) == 2:
            items[1]["call_id"] = items[0]["call_id"]
    _walk(obj, fn)


def usage_plus_one(obj: Any) -> None:
    def fn(d: dict[str, Any]) -> None:
        for k in ("completion_tokens", "output_tokens"):
            if isinstance(d.get(k), int) and d[k] > 1:
                d[k] += 1
    _walk(obj, fn)


BREAKS = {
    "arguments": (alter_arguments, "tools", r"tool call \S+ \(get_weather\): arguments \{.*omega.*\} differ from \w+'s \{.*alpha"),
    "finish": (finish_stop, "tools", r"(finish_reason should be 'tool_calls'|stop_reason should be 'tool_use'|status should be "
                                     r"'completed') after tool calls, got '(stop|end_turn|incomplete)'"),
    "index": (collapse_index, "parallel_tools", r"collapsed into index 0|two tool_use blocks start at index 0|two function_call "
                                                r"items added at output_index 0|tool calls share ids"),
    "usage": (usage_plus_one, "tools", r"usage \d+ in / \d+ out, \w+ reported \d+ in / \d+ out"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("protocol", ["openai_chat", "openai_responses", "anthropic_messages"])
@pytest.mark.parametrize("broken", sorted(BREAKS))
def test_a_broken_answer_fails_with_a_reason_naming_it(providers, protocol, stream, broken):
    mutate, case, phrase = BREAKS[broken]
    relay = Relay(providers, mutate)
    try:
        c = cells.run_cell(gateway(relay.url, providers), ROW[protocol], protocol, stream, case)
    finally:
        relay.close()
    assert c["status"] == "FAIL", c
    assert re.search(phrase, c["reason"]), c["reason"]


def test_the_relay_unbroken_passes(providers):
    # The relay itself changes nothing: the FAILs above come from the breaks alone.
    relay = Relay(providers, lambda obj: None)
    try:
        for protocol in PATHS:
            for stream in (False, True):
                c = cells.run_cell(gateway(relay.url, providers), ROW[protocol], protocol, stream, "parallel_tools")
                assert c["status"] == "PASS", (protocol, stream, c["reason"])
    finally:
        relay.close()


def test_a_provider_route_without_tools_is_unsupported(providers):
    """A gateway that sends a chat with tools to Ollama's /api/generate (LiteLLM's `ollama/` prefix
    does: it describes the tools in the prompt) reached a route that cannot carry tool calls."""
    def to_generate(path: str, body: dict[str, Any]) -> tuple[str, str, dict[str, Any], Callable]:
        prompt = body["messages"][-1]["content"]
        def back(obj: dict[str, Any]) -> str:
            return json.dumps({"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": body["model"],
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": obj["response"]},
                                            "finish_reason": "stop"}]})
        return providers["ollama"], "/api/generate", {"model": body["model"], "prompt": prompt, "stream": False}, back

    relay = Relay(providers, route=to_generate)
    try:
        row = Row("gpt-4o-mini", "ollama", "ollama", "gpt-4o-mini", 0.0, True)
        c = cells.run_cell(gateway(relay.url, providers), row, "openai_chat", False, "tools")
    finally:
        relay.close()
    assert c["status"] == "UNSUPPORTED", c
    assert "POST /api/generate on ollama (ollama), a route of that API without tool calls" in c["reason"]
    rec = cell_record("m", c)
    assert rec.status == "UNSUPPORTED" and rec.id == "SMOKE-gpt-4o-mini/openai_chat/plain/tools"


def test_the_tool_dimension_of_the_default_matrix():
    m = load_matrix("default")
    cheapest = [r.name for r in m.rows() if len(m.cases(r)) > 1]
    assert cheapest == ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022", "gemini/gemini-2.0-flash-lite",
                        "ollama/llama3.2", "llamacpp/qwen2.5-7b-instruct"]   # one per provider, no aliases
    all_cells = m.cells()
    assert len(all_cells) == 11 * 3 * 2 + 5 * 3 * 2 * 2
    # The text cells first, as they always were; then one tool and two parallel calls per protocol and mode.
    assert [c[3] for c in all_cells[:66]] == ["text"] * 66
    ids = [cell_id(r.name, p, s, c) for r, p, s, c in all_cells]
    assert len(set(ids)) == len(ids)
    assert "SMOKE-openai/gpt-4o-mini/anthropic_messages/stream/tools" in ids
    assert "SMOKE-gemini/gemini-2.0-flash-lite/openai_responses/plain/parallel_tools" in ids
    assert "SMOKE-fast/openai_chat/plain" in ids and not any(i.startswith("SMOKE-fast/") and i.endswith("tools") for i in ids)
    assert len(m.model_copy(update={"tools": "none"}).cells()) == 66
    assert len(m.model_copy(update={"tools": ["smart"]}).cells()) == 66 + 12


def test_tools_switch_and_not_offered_by_case(tmp_path):
    text = (load_matrix.__globals__["MATRICES"] / "default.yaml").read_text()
    p = tmp_path / "m.yaml"
    p.write_text(re.sub(r"(?m)^tools: .*$", "tools: [openai/gpt-9]", text))
    with pytest.raises(ConfigError) as e:
        load_matrix(str(p))
    assert "tools: 'openai/gpt-9' is neither a provider/model nor an alias" in str(e.value)
    p.write_text(text + "\nnot_offered:\n  - {kind: x, why: y}\n".replace("kind: x", "provider: gemini, case: parallel_tools"))
    m = load_matrix(str(p))
    assert m.not_offered_why("gemini", "openai_chat", True, "parallel_tools") == "y"
    assert m.not_offered_why("gemini", "openai_chat", True, "tools") is None
    assert m.not_offered_why("gemini", "openai_chat", True) is None
    assert Matrix.model_validate({**m.model_dump(), "not_offered": [{"why": "all of it"}]}).not_offered_why(
        "openai", "openai_chat", False, "tools") == "all of it"


def test_a_target_declares_a_case_not_offered(tmp_path):
    from harness.config import EMBEDDED_DEFAULT, load
    from harness.smoke.lane import with_not_offered
    base, _ = load(None)
    smoke = base.smoke.model_copy(update={"not_offered": [
        {"kind": "gemini", "case": "parallel_tools", "why": "no parallel calls to Gemini"}]})
    cfg = type(base).model_validate({**base.model_dump(), "smoke": smoke.model_dump()})
    m = with_not_offered(load_matrix("default"), cfg)
    assert m.not_offered_why("gemini", "openai_chat", True, "parallel_tools") == "no parallel calls to Gemini"
    assert m.not_offered_why("gemini", "openai_chat", True, "tools") is None
    bad = tmp_path / "harness.yaml"
    bad.write_text(Path(EMBEDDED_DEFAULT).read_text().replace(
        "smoke:\n  matrix: default\n", "smoke:\n  matrix: default\n  not_offered: [{kind: gemini, case: tool, why: x}]\n"))
    with pytest.raises(ConfigError) as e:
        load(bad)
    assert "smoke.not_offered.0.case" in str(e.value).replace("[", ".").replace("]", "") and "'tool' is not one of" in str(e.value)


def test_tool_cells_have_rows_of_their_own_in_the_grid():
    c = {"row": "openai/m", "protocol": "openai_chat", "stream": False, "status": "PASS", "reason": "ok"}
    result = {"rows": [{"name": "openai/m"}, {"name": "fast"}], "columns": [{"protocol": "openai_chat", "stream": False}],
              "cells": [c, {**c, "row": "fast"}, {**c, "case": "tools"}, {**c, "case": "parallel_tools", "status": "FAIL"}]}
    rows = grid(result)
    assert [(r["name"], r["cells"][0][0]) for r in rows] == [
        ("openai/m", 0), ("openai/m [tools]", 2), ("openai/m [parallel_tools]", 3), ("fast", 1)]
    rec = cell_record("m", result["cells"][3])
    assert rec.id == "SMOKE-openai/m/openai_chat/plain/parallel_tools" and rec.test == "openai_chat[plain/parallel_tools]"
    assert "two parallel tool calls" in rec.claim


# --- the readers never raise on what a gateway may send -------------------------------------------

WROTE = {"answer_calls": [{"name": "get_weather", "arguments": '{"city": "alpha"}'},
                          {"name": "get_time", "arguments": '{"timezone": "alpha"}'}],
         "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "alpha"}'}}
TOOL_PAYLOADS = [
    {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": None, "tool_calls": [CALL, {**CALL, "id": "call_2"}]}, "finish_reason": "tool_calls"}],
     "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}},
    {"id": "msg_1", "type": "message", "role": "assistant", "stop_reason": "tool_use", "usage": {
        "input_tokens": 3, "output_tokens": 4}, "content": [{"type": "tool_use", "id": "t1", "name": "get_weather",
                                                             "input": {"city": "alpha"}}]},
    {"id": "resp_1", "object": "response", "status": "completed", "usage": {"input_tokens": 3, "output_tokens": 4},
     "output": [{"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "get_weather", "arguments": "{}"}]}]
TOOL_STREAMS = [
    [{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{"}}]}}]},
     {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "c2", "function": {"arguments": "}"}}]}}]},
     {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
     {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}, DONE],
    [{"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 1}}},
     {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}},
     {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
     {"type": "content_block_stop", "index": 0},
     {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4, "input_tokens": 3}}],
    [{"type": "response.output_item.added", "output_index": 0, "item": {"type": "function_call", "call_id": "c1", "name": "f"}},
     {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": "{}"},
     {"type": "response.function_call_arguments.done", "output_index": 0, "arguments": "{}"},
     {"type": "response.output_item.done", "output_index": 0, "item": {"type": "function_call", "arguments": "{}"}},
     {"type": "response.completed", "response": TOOL_PAYLOADS[2]}]]
PROTOCOLS = ("openai_chat", "openai_responses", "anthropic_messages")


def _judge_all(reads: list[tc.Read]) -> None:
    for protocol, r in zip(PROTOCOLS, reads):
        for parallel in (False, True):
            assert all(isinstance(p, str) for p in tc.judge(protocol, r, WROTE, "p", parallel))
        assert isinstance(tc.calls_evidence(r), list)


@settings(max_examples=150, deadline=None)
@given(st.one_of(json_values, keyed_dicts, mutated(TOOL_PAYLOADS)))
def test_payload_readers_never_raise(obj):
    _judge_all([tc.chat_plain(obj), tc.responses_plain(obj), tc.messages_plain(obj)])


@settings(max_examples=150, deadline=None)
@given(st.one_of(sse_events(garbage_streams), sse_events(broken_streams), sse_events(mutated(TOOL_STREAMS)),
                 st.sampled_from(TOOL_STREAMS).map(lambda s: to_events(s, True))))
def test_stream_readers_never_raise(events):
    _judge_all([tc.chat_stream(os_.parse(events)), tc.responses_stream(events), tc.messages_stream(events)])
    ex = Exchange("POST", "/", {"stream": True, "stream_options": {"include_usage": True}}, status=200,
                  headers={"content-type": "text/event-stream"}, events=events)
    for protocol in PROTOCOLS:
        text, shape = cells.read_answer(protocol, True, ex, needs_text=False, usage_asked=True)
        assert all(isinstance(p, str) for p in shape)
