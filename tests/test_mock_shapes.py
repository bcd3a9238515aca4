"""Each mock provider shape against the request and response examples of its provider's own API
documentation (each test names its page): tools and parallel tool calls, JSON mode and structured
outputs, usage, stop reasons, streaming, errors in the provider's own shape; and the route a mock
does not serve, answered and journaled as such.

The examples' bodies are the documented ones; the answers are the mock's own deterministic words,
so what is asserted is the documented *shape*, plus what the request asked for (the tool named, the
schema's fields, the token limit)."""
from __future__ import annotations

import base64
import json
import struct
import sys

import httpx
import pytest

from harness.client.control import ProviderControl
from harness.client.sse import SSEParser
from harness.oracles import anthropic as ao
from harness.oracles import openai_chat as oc
from harness.oracles import openai_stream as os_
from harness.oracles import responses as ro
from harness.world.processes import spawn_ready

KINDS = {"oa": "openai", "an": "anthropic", "ge": "gemini", "ol": "ollama", "lc": "llamacpp", "vl": "vllm"}
T = 5   # seconds: every request to a local mock has this deadline
AV = {"anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    """One mock provider of every shape, in a process of their own."""
    spec = {"providers": [{"name": n, "kind": k, "models": ["llama3.2"] if k == "ollama" else []}
                          for n, k in KINDS.items()]}
    child, ready = spawn_ready("mock-providers", [sys.executable, "-m", "harness.mocks", json.dumps(spec)],
                               tmp_path_factory.mktemp("shapes") / "mocks.log", 20)
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ready["ports"].items()}
    yield {**urls, "ctl": {n: ProviderControl(n, u) for n, u in urls.items()}}
    child.stop(grace_s=3)


def events(resp: httpx.Response):
    return SSEParser().feed(resp.content)


def ndjson(resp: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


WEATHER = {"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather in a given location",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


# --- OpenAI: https://platform.openai.com/docs/api-reference/chat/create ---------------------------

def test_openai_chat_default_example(up):
    body = {"model": "gpt-4o", "messages": [{"role": "developer", "content": "You are a helpful assistant."},
                                            {"role": "user", "content": "Hello!"}]}
    r = httpx.post(up["oa"] + "/v1/chat/completions", json=body, timeout=T).json()
    assert oc.full_shape(r) == [] and r["object"] == "chat.completion" and r["id"].startswith("chatcmpl-")
    assert r["choices"][0]["finish_reason"] == "stop" and r["choices"][0]["message"]["refusal"] is None
    u = r["usage"]
    assert u["prompt_tokens"] + u["completion_tokens"] == u["total_tokens"]
    assert u["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0} and "reasoning_tokens" in u["completion_tokens_details"]


def test_openai_chat_functions_example_and_parallel(up):
    # The "Functions" example: get_current_weather with tool_choice auto.
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "What is the weather like in Boston today?"}],
            "tools": [WEATHER], "tool_choice": "auto"}
    r = httpx.post(up["oa"] + "/v1/chat/completions", json=body, timeout=T).json()
    (call,) = r["choices"][0]["message"]["tool_calls"]
    assert r["choices"][0]["finish_reason"] == "tool_calls" and r["choices"][0]["message"]["content"] is None
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert json.loads(call["function"]["arguments"]) == {"location": "alpha", "unit": "celsius"}   # enum: its first value
    two = httpx.post(up["oa"] + "/v1/chat/completions", json={**body, "tools": [WEATHER, TIME]}, timeout=T).json()
    assert oc.tool_calls_shape(two, expected_names=["get_current_weather", "get_time"]) == []
    one = httpx.post(up["oa"] + "/v1/chat/completions", json={**body, "tools": [WEATHER, TIME], "parallel_tool_calls": False},
                     timeout=T).json()
    assert [c["function"]["name"] for c in one["choices"][0]["message"]["tool_calls"]] == ["get_current_weather"]
    forced = httpx.post(up["oa"] + "/v1/chat/completions", timeout=T, json={
        **body, "tools": [WEATHER, TIME], "tool_choice": {"type": "function", "function": {"name": "get_time"}}}).json()
    assert [c["function"]["name"] for c in forced["choices"][0]["message"]["tool_calls"]] == ["get_time"]
    none = httpx.post(up["oa"] + "/v1/chat/completions", json={**body, "tool_choice": "none"}, timeout=T).json()
    assert none["choices"][0]["finish_reason"] == "stop" and none["choices"][0]["message"]["content"]
    # After the tool's result the model answers in words.
    back = {**body, "messages": body["messages"] + [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "22 C"}]}
    answered = httpx.post(up["oa"] + "/v1/chat/completions", json=back, timeout=T).json()
    assert answered["choices"][0]["finish_reason"] == "stop" and "tool_calls" not in answered["choices"][0]["message"]


def test_openai_chat_streaming_example_with_usage(up):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello!"}], "stream": True,
            "stream_options": {"include_usage": True}}
    s = os_.parse(events(httpx.post(up["oa"] + "/v1/chat/completions", json=body, timeout=T)))
    for oracle in (os_.chunk_objects, os_.same_id, os_.first_delta_role, os_.single_finish_reason_last,
                   os_.ends_with_done, os_.usage_once_final):
        assert oracle(s) == [], oracle.__name__
    tools = os_.parse(events(httpx.post(up["oa"] + "/v1/chat/completions", timeout=T, json={
        **body, "tools": [WEATHER, TIME]})))
    assert os_.tool_call_deltas(tools) == [] and os_.parallel_indexes(tools, 2) == []
    assert os_.finish_reason_value(tools) == "tool_calls"


def test_openai_json_mode_and_structured_outputs(up):
    # https://platform.openai.com/docs/guides/structured-outputs (the math_reasoning schema)
    schema = {"type": "object", "properties": {
        "steps": {"type": "array", "items": {"type": "object", "properties": {
            "explanation": {"type": "string"}, "output": {"type": "string"}}}, "minItems": 1},
        "final_answer": {"type": "string"}}, "required": ["steps", "final_answer"], "additionalProperties": False}
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "how can I solve 8x + 7 = -23"}]}
    obj = httpx.post(up["oa"] + "/v1/chat/completions", json={**body, "response_format": {"type": "json_object"}}, timeout=T).json()
    assert oc.json_content(obj) == []
    structured = httpx.post(up["oa"] + "/v1/chat/completions", timeout=T, json={**body, "response_format": {
        "type": "json_schema", "json_schema": {"name": "math_reasoning", "schema": schema, "strict": True}}}).json()
    doc = json.loads(structured["choices"][0]["message"]["content"])
    assert set(doc) == {"steps", "final_answer"} and set(doc["steps"][0]) == {"explanation", "output"}
    bad = httpx.post(up["oa"] + "/v1/chat/completions", json={**body, "response_format": {"type": "yaml"}}, timeout=T)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_openai_max_tokens_and_stop_are_finish_reasons(up):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "count"}]}
    full = httpx.post(up["oa"] + "/v1/chat/completions", json=body, timeout=T).json()
    words = full["choices"][0]["message"]["content"].split()
    cut = httpx.post(up["oa"] + "/v1/chat/completions", json={**body, "max_tokens": 3}, timeout=T).json()
    assert cut["choices"][0]["finish_reason"] == "length" and cut["usage"]["completion_tokens"] == 3
    assert cut["choices"][0]["message"]["content"].split() == words[:3]
    stopped = httpx.post(up["oa"] + "/v1/chat/completions", json={**body, "stop": [" " + words[4]]}, timeout=T).json()
    assert stopped["choices"][0]["finish_reason"] == "stop"
    assert stopped["choices"][0]["message"]["content"].split() == words[:4]


def test_openai_legacy_completions_example(up):
    # https://platform.openai.com/docs/api-reference/completions/create
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7, "temperature": 0}
    r = httpx.post(up["oa"] + "/v1/completions", json=body, timeout=T).json()
    assert r["object"] == "text_completion" and r["id"].startswith("cmpl-")
    assert r["choices"][0]["finish_reason"] == "length" and len(r["choices"][0]["text"].split()) == 7
    assert r["usage"] == {"prompt_tokens": r["usage"]["prompt_tokens"], "completion_tokens": 7,
                          "total_tokens": r["usage"]["prompt_tokens"] + 7}
    streamed = events(httpx.post(up["oa"] + "/v1/completions", timeout=T, json={
        **body, "max_tokens": 50, "stream": True, "stream_options": {"include_usage": True}}))
    chunks = [json.loads(e.data) for e in streamed if e.data != "[DONE]"]
    assert streamed[-1].data == "[DONE]" and all(c["object"] == "text_completion" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 12
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]][-1] == "stop"
    # The legacy API has no tools and no JSON mode: OpenAI refuses them.
    assert httpx.post(up["oa"] + "/v1/completions", json={**body, "tools": [WEATHER]}, timeout=T).status_code == 400


def test_openai_embeddings_example(up):
    # https://platform.openai.com/docs/api-reference/embeddings/create
    body = {"input": "The food was delicious and the waiter...", "model": "text-embedding-ada-002",
            "encoding_format": "float"}
    r = httpx.post(up["oa"] + "/v1/embeddings", json=body, timeout=T).json()
    assert r["object"] == "list" and r["model"] == "text-embedding-ada-002"
    (item,) = r["data"]
    assert item["object"] == "embedding" and item["index"] == 0 and all(isinstance(x, float) for x in item["embedding"])
    assert r["usage"]["prompt_tokens"] == r["usage"]["total_tokens"] == 7
    b64 = httpx.post(up["oa"] + "/v1/embeddings", json={**body, "encoding_format": "base64"}, timeout=T).json()
    raw = base64.b64decode(b64["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(item["embedding"], abs=1e-6)
    many = httpx.post(up["oa"] + "/v1/embeddings", json={**body, "input": ["a", "b"], "dimensions": 4}, timeout=T).json()
    assert [d["index"] for d in many["data"]] == [0, 1] and len(many["data"][1]["embedding"]) == 4
    assert httpx.post(up["oa"] + "/v1/embeddings", json={"model": "m", "input": ""}, timeout=T).status_code == 400


def test_openai_responses_examples(up):
    # https://platform.openai.com/docs/api-reference/responses/create (text input; functions; streaming)
    url = up["oa"] + "/v1/responses"
    plain = httpx.post(url, json={"model": "gpt-4.1", "input": "Tell me a three sentence bedtime story about a unicorn."},
                       timeout=T).json()
    assert ro.response_shape(plain) == [] and plain["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
    tools = [{"type": "function", "name": "get_current_weather", "description": "Get the current weather",
              "parameters": WEATHER["function"]["parameters"]}]
    called = httpx.post(url, json={"model": "gpt-4.1", "input": "What is the weather like in Boston today?",
                                   "tools": tools, "tool_choice": "auto"}, timeout=T).json()
    (item,) = called["output"]
    assert item["type"] == "function_call" and item["call_id"].startswith("call_") and json.loads(item["arguments"])["unit"] == "celsius"
    evs = events(httpx.post(url, json={"model": "gpt-4.1", "input": "weather?", "tools": tools, "stream": True}, timeout=T))
    types = [json.loads(e.data)["type"] for e in evs]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    args = "".join(json.loads(e.data)["delta"] for e in evs if json.loads(e.data)["type"] == "response.function_call_arguments.delta")
    assert json.loads(args) == json.loads(item["arguments"]) and "response.function_call_arguments.done" in types
    js = httpx.post(url, json={"model": "gpt-4.1", "input": "JSON please", "text": {"format": {"type": "json_object"}}},
                    timeout=T).json()
    assert isinstance(json.loads(ro.text(js)), dict)
    short = httpx.post(url, json={"model": "gpt-4.1", "input": "long story", "max_output_tokens": 16,
                                  "stream": False}, timeout=T).json()
    assert short["status"] == "completed"   # 12 words fit in 16 tokens
    assert httpx.post(url, json={"model": "gpt-4.1", "input": "x", "max_output_tokens": 5}, timeout=T).status_code == 400


def test_openai_models_list_and_retrieve(up):
    # https://platform.openai.com/docs/api-reference/models/list
    r = httpx.get(up["oa"] + "/v1/models", timeout=T).json()
    assert r["object"] == "list" and isinstance(r["data"], list)
    one = httpx.get(up["oa"] + "/v1/models/gpt-4o", timeout=T).json()
    assert one == {"id": "gpt-4o", "object": "model", "created": 1700000000, "owned_by": "harness-mock"}


# --- Anthropic: https://docs.anthropic.com/en/api/messages ------------------------------------------

def test_anthropic_basic_example(up):
    body = {"model": "claude-sonnet-4-20250514", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello, world"}]}
    r = httpx.post(up["an"] + "/v1/messages", json=body, headers=AV, timeout=T).json()
    assert ao.message_shape(r) == [] and r["type"] == "message" and r["id"].startswith("msg_")
    assert r["stop_reason"] == "end_turn" and r["stop_sequence"] is None and r["content"][0]["type"] == "text"
    assert set(r["usage"]) >= {"input_tokens", "output_tokens"} and r["usage"]["output_tokens"] == 12
    missing = httpx.post(up["an"] + "/v1/messages", json=body, timeout=T)
    assert missing.status_code == 400 and missing.json()["error"]["type"] == "invalid_request_error"
    system_role = httpx.post(up["an"] + "/v1/messages", headers=AV, timeout=T, json={
        **body, "messages": [{"role": "system", "content": "x"}, *body["messages"]]})
    assert system_role.status_code == 400 and "top-level `system`" in system_role.json()["error"]["message"]


def test_anthropic_tool_use_example_parallel_and_choice(up):
    # https://docs.anthropic.com/en/docs/build-with-claude/tool-use (get_weather)
    weather = {"name": "get_weather", "description": "Get the current weather in a given location",
               "input_schema": {"type": "object", "properties": {
                   "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                   "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}
    time_tool = {"name": "get_time", "description": "Get the current time in a given time zone",
                 "input_schema": {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}}
    body = {"model": "claude-opus-4-1-20250805", "max_tokens": 1024, "tools": [weather],
            "messages": [{"role": "user", "content": "What is the weather like in San Francisco?"}]}
    url = up["an"] + "/v1/messages"
    r = httpx.post(url, json=body, headers=AV, timeout=T).json()
    (use,) = r["content"]
    assert r["stop_reason"] == "tool_use" and use["type"] == "tool_use" and use["id"].startswith("toolu_")
    assert use["name"] == "get_weather" and use["input"] == {"location": "alpha", "unit": "celsius"}
    both = httpx.post(url, json={**body, "tools": [weather, time_tool]}, headers=AV, timeout=T).json()
    assert [b["name"] for b in both["content"]] == ["get_weather", "get_time"]
    single = httpx.post(url, headers=AV, timeout=T, json={
        **body, "tools": [weather, time_tool], "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}).json()
    assert [b["name"] for b in single["content"]] == ["get_weather"]
    forced = httpx.post(url, headers=AV, timeout=T, json={
        **body, "tools": [weather, time_tool], "tool_choice": {"type": "tool", "name": "get_time"}}).json()
    assert [b["name"] for b in forced["content"]] == ["get_time"]
    none = httpx.post(url, json={**body, "tool_choice": {"type": "none"}}, headers=AV, timeout=T).json()
    assert none["stop_reason"] == "end_turn"
    result = httpx.post(url, headers=AV, timeout=T, json={**body, "messages": body["messages"] + [
        {"role": "assistant", "content": r["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"], "content": "15 degrees"}]}]}).json()
    assert result["stop_reason"] == "end_turn" and result["content"][0]["type"] == "text"
    streamed = events(httpx.post(url, json={**body, "stream": True}, headers=AV, timeout=T))
    assert ao.event_order(streamed) == [] and ao.message_delta_usage(streamed) == []
    partial = "".join(json.loads(e.data)["delta"]["partial_json"] for e in streamed if e.event == "content_block_delta")
    assert json.loads(partial) == use["input"]


def test_anthropic_stop_sequences_and_max_tokens(up):
    body = {"model": "claude-x", "max_tokens": 1024, "messages": [{"role": "user", "content": "count"}]}
    url = up["an"] + "/v1/messages"
    words = httpx.post(url, json=body, headers=AV, timeout=T).json()["content"][0]["text"].split()
    seq = " " + words[2]
    stopped = httpx.post(url, json={**body, "stop_sequences": [seq]}, headers=AV, timeout=T).json()
    assert stopped["stop_reason"] == "stop_sequence" and stopped["stop_sequence"] == seq
    assert stopped["content"][0]["text"].split() == words[:2]
    cut = httpx.post(url, json={**body, "max_tokens": 5}, headers=AV, timeout=T).json()
    assert cut["stop_reason"] == "max_tokens" and cut["usage"]["output_tokens"] == 5
    evs = events(httpx.post(url, json={**body, "max_tokens": 5, "stream": True}, headers=AV, timeout=T))
    delta = next(json.loads(e.data) for e in evs if e.event == "message_delta")
    assert delta["delta"]["stop_reason"] == "max_tokens" and delta["usage"]["output_tokens"] == 5


def test_anthropic_count_tokens_example(up):
    # https://docs.anthropic.com/en/api/messages-count-tokens
    body = {"model": "claude-3-7-sonnet-20250219", "messages": [{"role": "user", "content": "Hello, world"}]}
    counted = httpx.post(up["an"] + "/v1/messages/count_tokens", json=body, headers=AV, timeout=T).json()
    assert set(counted) == {"input_tokens"}
    used = httpx.post(up["an"] + "/v1/messages", json={**body, "max_tokens": 16}, headers=AV, timeout=T).json()
    assert counted["input_tokens"] == used["usage"]["input_tokens"]   # the same prompt, the same count
    listed = httpx.get(up["an"] + "/v1/models", timeout=T).json()
    assert listed["has_more"] is False and isinstance(listed["data"], list)


# --- Gemini: https://ai.google.dev/api/generate-content ---------------------------------------------

G = "/v1beta/models/gemini-2.0-flash"


def test_gemini_text_example_usage_and_stream_forms(up):
    body = {"contents": [{"parts": [{"text": "Write a story about a magic backpack."}]}]}
    r = httpx.post(up["ge"] + G + ":generateContent", json=body, timeout=T).json()
    cand = r["candidates"][0]
    assert cand["content"]["role"] == "model" and cand["finishReason"] == "STOP" and cand["content"]["parts"][0]["text"]
    u = r["usageMetadata"]
    assert u["promptTokenCount"] + u["candidatesTokenCount"] == u["totalTokenCount"] and r["modelVersion"]
    sse_events = events(httpx.post(up["ge"] + G + ":streamGenerateContent?alt=sse", json=body, timeout=T))
    chunks = [json.loads(e.data) for e in sse_events]
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == cand["content"]["parts"][0]["text"]
    assert chunks[-1]["usageMetadata"] == u and chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    # Without alt=sse the stream is one JSON array.
    arr = httpx.post(up["ge"] + G + ":streamGenerateContent", json=body, timeout=T)
    same = [{k: v for k, v in c.items() if k != "responseId"} for c in chunks]   # each response has its own id
    assert arr.headers["content-type"].startswith("application/json")
    assert [{k: v for k, v in c.items() if k != "responseId"} for c in json.loads(arr.text)] == same


def test_gemini_function_calling_examples(up):
    # https://ai.google.dev/gemini-api/docs/function-calling (schedule_meeting; parallel: the party example)
    meeting = {"name": "schedule_meeting", "description": "Schedules a meeting with specified attendees.",
               "parameters": {"type": "object", "properties": {
                   "attendees": {"type": "array", "items": {"type": "string"}},
                   "date": {"type": "string"}, "time": {"type": "string"}, "topic": {"type": "string"}},
                   "required": ["attendees", "date", "time", "topic"]}}
    body = {"contents": [{"role": "user", "parts": [{"text": "Schedule a meeting with Bob and Alice for 03/27/2025 at 10:00 AM about the Q3 planning."}]}],
            "tools": [{"functionDeclarations": [meeting]}]}
    r = httpx.post(up["ge"] + G + ":generateContent", json=body, timeout=T).json()
    (part,) = r["candidates"][0]["content"]["parts"]
    assert part["functionCall"]["name"] == "schedule_meeting"
    assert set(part["functionCall"]["args"]) == {"attendees", "date", "time", "topic"}
    party = [{"name": n, "parameters": {"type": "object", "properties": {}}} for n in ("power_disco_ball", "start_music", "dim_lights")]
    parallel = httpx.post(up["ge"] + G + ":generateContent", timeout=T, json={
        **body, "tools": [{"function_declarations": party}]}).json()   # snake_case, as protobuf JSON allows
    assert [p["functionCall"]["name"] for p in parallel["candidates"][0]["content"]["parts"]] == ["power_disco_ball", "start_music"]
    forced = httpx.post(up["ge"] + G + ":generateContent", timeout=T, json={
        **body, "tools": [{"functionDeclarations": party}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["dim_lights"]}}}).json()
    assert [p["functionCall"]["name"] for p in forced["candidates"][0]["content"]["parts"]] == ["dim_lights"]
    none = httpx.post(up["ge"] + G + ":generateContent", timeout=T, json={
        **body, "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}}).json()
    assert "text" in none["candidates"][0]["content"]["parts"][0]
    back = httpx.post(up["ge"] + G + ":generateContent", timeout=T, json={**body, "contents": body["contents"] + [
        {"role": "model", "parts": [part]},
        {"role": "user", "parts": [{"functionResponse": {"name": "schedule_meeting", "response": {"ok": True}}}]}]}).json()
    assert "text" in back["candidates"][0]["content"]["parts"][0]
    streamed = [json.loads(e.data) for e in events(httpx.post(up["ge"] + G + ":streamGenerateContent?alt=sse", json=body, timeout=T))]
    assert streamed[-1]["candidates"][0]["content"]["parts"] == [part] and streamed[-1]["usageMetadata"]


def test_gemini_json_mode_and_limits(up):
    # https://ai.google.dev/gemini-api/docs/structured-output (the recipes example)
    schema = {"type": "ARRAY", "items": {"type": "OBJECT", "properties": {
        "recipeName": {"type": "STRING"}, "ingredients": {"type": "ARRAY", "items": {"type": "STRING"}}}}, "minItems": 1}
    body = {"contents": [{"parts": [{"text": "List a few popular cookie recipes, and include the amounts of ingredients."}]}],
            "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema}}
    r = httpx.post(up["ge"] + G + ":generateContent", json=body, timeout=T).json()
    doc = json.loads(r["candidates"][0]["content"]["parts"][0]["text"])
    assert isinstance(doc, list) and set(doc[0]) == {"recipeName", "ingredients"}
    plain_json = httpx.post(up["ge"] + G + ":generateContent", timeout=T, json={
        **body, "generationConfig": {"responseMimeType": "application/json"}}).json()
    assert isinstance(json.loads(plain_json["candidates"][0]["content"]["parts"][0]["text"]), dict)
    cut = httpx.post(up["ge"] + G + ":generateContent", timeout=T, json={
        "contents": body["contents"], "generation_config": {"max_output_tokens": 4}}).json()
    assert cut["candidates"][0]["finishReason"] == "MAX_TOKENS" and cut["usageMetadata"]["candidatesTokenCount"] == 4
    bad = httpx.post(up["ge"] + G + ":generateContent", json={"messages": [{"role": "user", "content": "x"}]}, timeout=T)
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_gemini_count_tokens_and_embeddings_examples(up):
    # https://ai.google.dev/api/tokens and https://ai.google.dev/api/embeddings
    body = {"contents": [{"parts": [{"text": "The quick brown fox jumps over the lazy dog."}]}]}
    counted = httpx.post(up["ge"] + G + ":countTokens", json=body, timeout=T).json()
    used = httpx.post(up["ge"] + G + ":generateContent", json=body, timeout=T).json()
    assert counted["totalTokens"] == used["usageMetadata"]["promptTokenCount"]
    wrapped = httpx.post(up["ge"] + G + ":countTokens", timeout=T,
                         json={"generateContentRequest": {"model": "models/gemini-2.0-flash", **body}}).json()
    assert wrapped["totalTokens"] == counted["totalTokens"]
    emb = httpx.post(up["ge"] + "/v1beta/models/text-embedding-004:embedContent", timeout=T, json={
        "model": "models/text-embedding-004", "content": {"parts": [{"text": "Hello world"}]}}).json()
    assert isinstance(emb["embedding"]["values"], list) and len(emb["embedding"]["values"]) == 16
    batch = httpx.post(up["ge"] + "/v1beta/models/text-embedding-004:batchEmbedContents", timeout=T, json={"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]}} for t in ("Hello world", "x")]}).json()
    assert batch["embeddings"][0]["values"] == emb["embedding"]["values"] and len(batch["embeddings"]) == 2
    listed = httpx.get(up["ge"] + "/v1beta/models", timeout=T).json()
    assert listed == {"models": []}


# --- Ollama: https://github.com/ollama/ollama/blob/main/docs/api.md ---------------------------------

def test_ollama_generate_examples(up):
    url = up["ol"] + "/api/generate"
    lines = ndjson(httpx.post(url, json={"model": "llama3.2", "prompt": "Why is the sky blue?"}, timeout=T))
    assert [x["done"] for x in lines] == [False] * 12 + [True] and all("response" in x for x in lines)
    final = lines[-1]
    assert final["response"] == "" and final["done_reason"] == "stop" and final["context"]
    assert final["eval_count"] == 12 and final["prompt_eval_count"] > 0 and final["total_duration"] > 0
    plain = httpx.post(url, json={"model": "llama3.2", "prompt": "Why is the sky blue?", "stream": False}, timeout=T).json()
    assert plain["response"] == "".join(x["response"] for x in lines) and plain["done"] is True
    # JSON mode and structured outputs.
    js = httpx.post(url, timeout=T, json={"model": "llama3.2", "prompt": "What color is the sky at different times of the day? Respond using JSON",
                                          "format": "json", "stream": False}).json()
    assert isinstance(json.loads(js["response"]), dict)
    schema = {"type": "object", "properties": {"age": {"type": "integer"}, "available": {"type": "boolean"}},
              "required": ["age", "available"]}
    st = httpx.post(url, timeout=T, json={"model": "llama3.1:8b", "stream": False, "format": schema,
                                          "prompt": "Ollama is 22 years old and is busy saving the world. Respond using JSON"}).json()
    assert json.loads(st["response"]) == {"age": 1, "available": True}
    # /api/generate has no tools: Ollama ignores the field, the answer is words.
    tools = httpx.post(url, json={"model": "llama3.2", "prompt": "weather?", "stream": False, "tools": [WEATHER]}, timeout=T).json()
    assert "tool_calls" not in tools and tools["response"]
    cut = httpx.post(url, json={"model": "llama3.2", "prompt": "x", "stream": False, "options": {"num_predict": 3}}, timeout=T).json()
    assert cut["done_reason"] == "length" and cut["eval_count"] == 3
    loaded = httpx.post(url, json={"model": "llama3.2"}, timeout=T).json()
    assert loaded["done_reason"] == "load" and loaded["response"] == ""
    # A wrongly typed option fails when Ollama schedules the model: a 500, as its handleScheduleError answers.
    typed = httpx.post(url, json={"model": "llama3.2", "prompt": "x", "options": {"temperature": "warm"}}, timeout=T)
    assert typed.status_code == 500 and typed.json() == {"error": 'option "temperature" must be of type float32'}


def test_ollama_chat_examples_with_tools(up):
    url = up["ol"] + "/api/chat"
    msgs = [{"role": "user", "content": "why is the sky blue?"}]
    lines = ndjson(httpx.post(url, json={"model": "llama3.2", "messages": msgs}, timeout=T))
    assert lines[-1]["done"] and lines[-1]["done_reason"] == "stop" and lines[-1]["eval_count"] == 12
    weather = {"type": "function", "function": {"name": "get_current_weather", "description": "Get the current weather for a location",
               "parameters": {"type": "object", "properties": {
                   "location": {"type": "string"}, "format": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                   "required": ["location", "format"]}}}
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "What is the weather today in Paris?"}],
            "stream": False, "tools": [weather]}
    r = httpx.post(url, json=body, timeout=T).json()
    (call,) = r["message"]["tool_calls"]
    assert call == {"function": {"name": "get_current_weather", "arguments": {"location": "alpha", "format": "celsius"}}}
    assert r["done_reason"] == "stop" and r["message"]["content"] == ""
    two = httpx.post(url, json={**body, "tools": [weather, TIME]}, timeout=T).json()
    assert [c["function"]["name"] for c in two["message"]["tool_calls"]] == ["get_current_weather", "get_time"]
    streamed = ndjson(httpx.post(url, json={**body, "stream": True}, timeout=T))
    assert [x["message"].get("tool_calls") for x in streamed if x["message"].get("tool_calls")] == [[call]]
    back = httpx.post(url, timeout=T, json={**body, "messages": body["messages"] + [
        {"role": "assistant", "content": "", "tool_calls": [call]}, {"role": "tool", "content": "11 degrees"}]}).json()
    assert "tool_calls" not in back["message"] and back["message"]["content"]
    js = httpx.post(url, json={"model": "llama3.2", "messages": msgs, "format": "json", "stream": False}, timeout=T).json()
    assert isinstance(json.loads(js["message"]["content"]), dict)
    bad = httpx.post(url, json={"model": "llama3.2", "messages": msgs, "format": "yaml"}, timeout=T)
    assert bad.status_code == 400 and set(bad.json()) == {"error"}


def test_ollama_embed_tags_show_and_openai_compat(up):
    e = httpx.post(up["ol"] + "/api/embed", json={"model": "all-minilm", "input": "Why is the sky blue?"}, timeout=T).json()
    assert len(e["embeddings"]) == 1 and e["model"] == "all-minilm" and e["prompt_eval_count"] == 5
    two = httpx.post(up["ol"] + "/api/embed", json={"model": "all-minilm", "input": ["Why is the sky blue?", "Why is the grass green?"]},
                     timeout=T).json()
    assert two["embeddings"][0] == e["embeddings"][0] and len(two["embeddings"]) == 2
    legacy = httpx.post(up["ol"] + "/api/embeddings", json={"model": "all-minilm", "prompt": "Why is the sky blue?"}, timeout=T).json()
    assert legacy["embedding"] == e["embeddings"][0]
    assert [m["name"] for m in httpx.get(up["ol"] + "/api/tags", timeout=T).json()["models"]] == ["llama3.2"]
    show = httpx.post(up["ol"] + "/api/show", json={"model": "llama3.2"}, timeout=T).json()
    assert "tools" in show["capabilities"] and show["model_info"]["llama.context_length"] == 8192
    assert httpx.post(up["ol"] + "/api/show", json={"model": "nope"}, timeout=T).status_code == 404
    compat = httpx.post(up["ol"] + "/v1/chat/completions", timeout=T, json={
        "model": "llama3.2", "messages": [{"role": "user", "content": "Hello!"}]}).json()
    assert oc.full_shape(compat) == [] and set(compat["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


# --- OpenAI-compatible local servers -------------------------------------------------------------

def test_llamacpp_server_differences(up):
    # https://github.com/ggml-org/llama.cpp/blob/master/tools/server/README.md
    body = {"model": "qwen2.5-7b-instruct", "messages": [{"role": "user", "content": "Hello!"}]}
    r = httpx.post(up["lc"] + "/v1/chat/completions", json=body, timeout=T).json()
    assert oc.full_shape(r) == [] and r["timings"]["predicted_n"] == r["usage"]["completion_tokens"]
    assert "prompt_tokens_details" not in r["usage"]
    assert httpx.post(up["lc"] + "/chat/completions", json=body, timeout=T).status_code == 200   # without /v1 too
    bad = httpx.post(up["lc"] + "/v1/chat/completions", json={"model": "m"}, timeout=T).json()
    assert bad["error"]["code"] == 400 and bad["error"]["type"] == "invalid_request_error"
    assert httpx.get(up["lc"] + "/health", timeout=T).json() == {"status": "ok"}
    calls = httpx.post(up["lc"] + "/v1/chat/completions", json={**body, "tools": [WEATHER, TIME]}, timeout=T).json()
    assert oc.tool_calls_shape(calls, expected_names=["get_current_weather", "get_time"]) == []


def test_vllm_server_differences(up):
    # https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html
    body = {"model": "NousResearch/Meta-Llama-3-8B-Instruct", "messages": [{"role": "user", "content": "Hello!"}]}
    r = httpx.post(up["vl"] + "/v1/chat/completions", json=body, timeout=T).json()
    assert oc.full_shape(r) == [] and r["choices"][0]["message"]["tool_calls"] == [] and "system_fingerprint" not in r
    bad = httpx.post(up["vl"] + "/v1/chat/completions", json={"model": "m"}, timeout=T).json()
    assert bad == {"error": {"message": "messages must be a non-empty list", "type": "BadRequestError", "param": None, "code": 400}}
    # "parallel_tool_calls and user parameters are ignored"
    both = httpx.post(up["vl"] + "/v1/chat/completions", json={**body, "tools": [WEATHER, TIME], "parallel_tool_calls": False},
                      timeout=T).json()
    assert len(both["choices"][0]["message"]["tool_calls"]) == 2
    assert httpx.get(up["vl"] + "/health", timeout=T).status_code == 200
    assert httpx.post(up["vl"] + "/chat/completions", json=body, timeout=T).status_code == 404   # vLLM serves only /v1


# --- a route the mock does not serve ------------------------------------------------------------

@pytest.mark.parametrize("name,path", [("oa", "/v1/audio/speech"), ("an", "/v1/complete"), ("ge", G + ":predict"),
                                       ("ol", "/api/pull"), ("lc", "/completion"), ("vl", "/pooling")])
def test_an_unserved_route_is_a_distinct_404_and_journaled(up, name, path):
    ctl: ProviderControl = up["ctl"][name]
    r = httpx.post(up[name] + path, json={"model": "m", "prompt": "[h:unserved1]"}, timeout=T)
    assert r.status_code == 404 and r.headers["x-harness-mock"] == "route-not-served"
    assert "harness mock: route not served: POST " + path in r.text
    entries = ctl.journal(served=False)
    assert any(e["path"] == path and e["status"] == 404 and not e["served"] for e in entries)
    # Served routes are not in that list: it is how the harness finds the gaps.
    assert all(not e["served"] for e in entries)


def test_a_script_can_unserve_a_route_for_a_while(up):
    ctl: ProviderControl = up["ctl"]["ol"]
    ctl.script(path="/api/generate", unserved=True, times=1, tag="unserve1")
    body = {"model": "llama3.2", "prompt": "hi [h:unserve1]", "stream": False}
    first = httpx.post(up["ol"] + "/api/generate", json=body, timeout=T)
    second = httpx.post(up["ol"] + "/api/generate", json=body, timeout=T)
    assert first.status_code == 404 and first.json() == {"error": first.json()["error"]}
    assert "route not served: POST /api/generate" in first.json()["error"] and second.status_code == 200
    assert [e["served"] for e in ctl.journal(tag="unserve1")] == [False, True]


def test_the_journal_says_what_each_route_can_do(up):
    ctl: ProviderControl = up["ctl"]["ol"]
    httpx.post(up["ol"] + "/api/generate", json={"model": "m", "prompt": "[h:can1]", "stream": False}, timeout=T)
    httpx.post(up["ol"] + "/api/chat", json={"model": "m", "messages": [{"role": "user", "content": "[h:can1]"}]}, timeout=T)
    by_path = {e["path"]: e for e in ctl.journal(tag="can1")}
    assert by_path["/api/generate"]["route_can"] == ["json"]
    assert by_path["/api/chat"]["route_can"] == ["json", "parallel_tools", "tools"]
    assert by_path["/api/chat"]["stream"] is True   # Ollama streams unless told not to
    # usage in the provider's fields, and the same in OpenAI's
    g = by_path["/api/generate"]
    assert g["usage"] == {"prompt_tokens": g["answer_usage"]["prompt_eval_count"],
                          "completion_tokens": g["answer_usage"]["eval_count"],
                          "total_tokens": g["answer_usage"]["prompt_eval_count"] + g["answer_usage"]["eval_count"]}
