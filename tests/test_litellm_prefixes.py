"""The mock providers through a real LiteLLM proxy, one LiteLLM provider prefix per shape: `openai/`,
`anthropic/`, `gemini/`, `ollama/` (which calls Ollama's /api/generate), `ollama_chat/` (/api/chat),
and two OpenAI-compatible local servers (llama.cpp behind `openai/` with its own api_base, vLLM
behind `hosted_vllm/`). For each: the journal shows the route LiteLLM called, and the client gets
the text, tool calls and usage the mock wrote. What LiteLLM does differently from the API it
promises is asserted as observed (LiteLLM 1.108.7), with the evidence, never hidden."""
from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import httpx
import pytest

from harness.client.control import ProviderControl
from harness.client.sse import SSEParser
from harness.mocks import content
from harness.oracles import openai_stream as os_
from harness.world.gateway import wait_ready
from harness.world.processes import Child, free_port, spawn_ready

pytestmark = pytest.mark.e2e

KINDS = {"oa": "openai", "an": "anthropic", "ge": "gemini", "ol": "ollama", "lc": "llamacpp", "vl": "vllm"}
# route name -> (LiteLLM model, api_base suffix, provider, upstream model)
ROUTES = {
    "openai-m": ("openai/gpt-4o-mini", "/v1", "oa", "gpt-4o-mini"),
    "anthropic-m": ("anthropic/claude-3-5-haiku-20241022", "", "an", "claude-3-5-haiku-20241022"),
    "gemini-m": ("gemini/gemini-2.0-flash", "/v1beta", "ge", "gemini-2.0-flash"),
    "ollama-gen": ("ollama/llama3.2", "", "ol", "llama3.2"),
    "ollama-chat": ("ollama_chat/llama3.2", "", "ol", "llama3.2"),
    "llamacpp-m": ("openai/qwen2.5-7b-instruct", "/v1", "lc", "qwen2.5-7b-instruct"),
    "vllm-m": ("hosted_vllm/meta-llama/Llama-3.1-8B-Instruct", "/v1", "vl", "meta-llama/Llama-3.1-8B-Instruct"),
    "openai-emb": ("openai/text-embedding-3-small", "/v1", "oa", "text-embedding-3-small"),
    "gemini-emb": ("gemini/text-embedding-004", "/v1beta", "ge", "text-embedding-004"),
    "ollama-emb": ("ollama/nomic-embed-text", "", "ol", "nomic-embed-text"),
    "openai-text": ("text-completion-openai/gpt-3.5-turbo-instruct", "/v1", "oa", "gpt-3.5-turbo-instruct"),
}
# The path each chat route must reach, plain and streamed.
CHAT_PATHS = {
    "openai-m": ("/v1/chat/completions",) * 2, "anthropic-m": ("/v1/messages",) * 2,
    "gemini-m": ("/v1beta/models/gemini-2.0-flash:generateContent", "/v1beta/models/gemini-2.0-flash:streamGenerateContent"),
    "ollama-gen": ("/api/generate",) * 2, "ollama-chat": ("/api/chat",) * 2,
    "llamacpp-m": ("/v1/chat/completions",) * 2, "vllm-m": ("/v1/chat/completions",) * 2,
}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
DEADLINE_S = 30   # each request through the gateway


def _config(urls: dict[str, str]) -> str:
    lines = ["model_list:"]
    for name, (model, suffix, prov, _) in ROUTES.items():
        lines += [f"  - model_name: {name}", "    litellm_params:", f"      model: {model}",
                  f"      api_base: {urls[prov]}{suffix}"]
        if KINDS[prov] in ("openai", "anthropic", "gemini"):
            lines.append(f"      api_key: sk-mock-upstream-{prov}")   # a fake upstream key: the mocks take any
        elif KINDS[prov] == "llamacpp":
            lines.append("      api_key: none")                       # a local server without --api-key
    lines += ["litellm_settings:", "  num_retries: 0", "  request_timeout: 20", "  drop_params: false",
              "  telemetry: false", "general_settings:",
              # The master key comes from the environment, so it is never written to a file.
              "  master_key: os.environ/HARNESS_E2E_MASTER_KEY"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    d: Path = tmp_path_factory.mktemp("litellm-prefixes")
    spec = {"providers": [{"name": n, "kind": k} for n, k in KINDS.items()]}
    mocks, ready = spawn_ready("mock-providers", [sys.executable, "-m", "harness.mocks", json.dumps(spec)],
                               d / "mocks.log", 20)
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ready["ports"].items()}
    (d / "litellm.yaml").write_text(_config(urls))
    key, port = "sk-harness-" + secrets.token_hex(16), free_port()
    env = {"LITELLM_OFFLINE_MODE": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "true", "LITELLM_LOG": "ERROR",
           "DISABLE_SCHEMA_UPDATE": "true", "HARNESS_E2E_MASTER_KEY": key}
    litellm = Child("gateway", [str(Path(sys.executable).parent / "litellm"), "--config", str(d / "litellm.yaml"),
                                "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                    env=env, log_path=d / "gateway.log", cwd=d)
    try:
        wait_ready(f"http://127.0.0.1:{port}/health/liveliness", 180, litellm)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"},
                              timeout=DEADLINE_S, trust_env=False)
        yield {"client": client, "ctl": {n: ProviderControl(n, u) for n, u in urls.items()}}
        client.close()
    finally:
        litellm.stop(grace_s=10)
        mocks.stop(grace_s=3)


def send(gw, route: str, path: str = "/v1/chat/completions", **body) -> tuple[httpx.Response, list[dict], str]:
    """One request for `route`, tagged; returns the answer and the journal of the route's provider."""
    tag = "e2e" + secrets.token_hex(5)
    raw = json.loads(json.dumps(body).replace("TAG", tag))
    if "messages" not in raw and "input" not in raw and "prompt" not in raw:
        raw["messages"] = [{"role": "user", "content": f"Say something. [h:{tag}]"}]
    r = gw["client"].post(path, json={"model": route, **raw})
    return r, gw["ctl"][ROUTES[route][2]].journal(tag=tag), tag


def usage3(u: dict) -> dict:
    return {k: u.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


@pytest.mark.parametrize("route", list(CHAT_PATHS))
def test_plain_chat_reaches_the_right_route_and_the_client_gets_its_text_and_usage(gw, route):
    r, journal, _ = send(gw, route)
    assert r.status_code == 200, r.text[:300]
    (e,) = journal
    assert e["path"] == CHAT_PATHS[route][0] and e["served"] and e["status"] == 200
    assert e["model"] == ROUTES[route][3]
    body = r.json()
    assert body["choices"][0]["message"]["content"] == e["answer_text"]
    assert usage3(body["usage"]) == e["usage"]
    assert body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("route", list(CHAT_PATHS))
def test_streamed_chat_reaches_the_right_route_and_the_client_gets_its_text_and_usage(gw, route):
    r, journal, _ = send(gw, route, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    (e,) = journal
    assert e["path"] == CHAT_PATHS[route][1] and e["stream"] and e["completed"]
    s = os_.parse(SSEParser().feed(r.content))
    assert os_.text(s) == e["answer_text"] and os_.ends_with_done(s) == []
    usages = [c["usage"] for c in s.chunks if c.get("usage")]
    assert len(usages) == 1 and usage3(usages[0]) == e["usage"]
    # LiteLLM 1.108.7, every prefix: the usage chunk carries `choices: [{"index": 0, "delta": {}}]`, not
    # the `choices: []` OpenAI sends (CM-10.2.7), even when the provider itself sent `[]` (openai/).
    last = next(c for c in s.chunks if c.get("usage"))
    assert last["choices"] == [{"index": 0, "delta": {}}], last["choices"]


TOOL_ROUTES = ["openai-m", "anthropic-m", "gemini-m", "ollama-chat", "llamacpp-m", "vllm-m"]


@pytest.mark.parametrize("route", TOOL_ROUTES)
def test_parallel_tool_calls_come_back_as_the_provider_made_them(gw, route):
    r, journal, _ = send(gw, route, tools=[WEATHER, TIME])
    (e,) = journal
    assert "tools" in e["route_can"] and e["finish"] == "tool_calls"
    choice = r.json()["choices"][0]
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"city": "alpha"}] * 2
    assert choice["finish_reason"] == "tool_calls" and all(c["id"] for c in calls)
    streamed, _, _ = send(gw, route, tools=[WEATHER, TIME], stream=True)
    s = os_.parse(SSEParser().feed(streamed.content))
    assert os_.tool_call_deltas(s) == [] and os_.parallel_indexes(s, 2) == []
    assert os_.finish_reason_value(s) == "tool_calls"


def test_ollama_generate_has_no_tools_and_litellm_describes_them_in_the_prompt(gw):
    """`ollama/` sends a chat with tools to /api/generate, an API without tools: LiteLLM writes the
    tools into the prompt and asks for JSON; the mock, a model that does not follow prompts, answers
    JSON words, so the client gets no tool call. The journal says the route cannot do tools: the
    harness makes such claims UNSUPPORTED (tests/test_ollama_default_model.py)."""
    r, journal, _ = send(gw, "ollama-gen", tools=[WEATHER, TIME])
    (e,) = journal
    assert e["path"] == "/api/generate" and e["route_can"] == ["json"]
    assert e["body"]["format"] == "json" and "To call a function, reply with JSON ONLY" in e["body"]["prompt"]
    msg = r.json()["choices"][0]["message"]
    assert not msg.get("tool_calls") and json.loads(msg["content"]) == json.loads(e["answer_text"])


@pytest.mark.parametrize("route,flag", [
    ("openai-m", lambda b: b["response_format"] == {"type": "json_object"}),
    ("gemini-m", lambda b: b["generationConfig"]["response_mime_type"] == "application/json"),
    ("ollama-gen", lambda b: b["format"] == "json"),
    ("ollama-chat", lambda b: b["format"] == "json"),
    ("llamacpp-m", lambda b: b["response_format"] == {"type": "json_object"}),
    ("vllm-m", lambda b: b["response_format"] == {"type": "json_object"}),
])
def test_json_mode_reaches_the_provider_in_its_own_terms(gw, route, flag):
    r, journal, _ = send(gw, route, response_format={"type": "json_object"})
    (e,) = journal
    assert flag(e["body"]) and "json" in e["route_can"]
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == json.loads(e["answer_text"])


def test_anthropic_json_object_is_dropped_but_a_schema_becomes_a_forced_tool(gw):
    """The Messages API has no JSON mode. LiteLLM 1.108.7 (drop_params: false) forwards
    `response_format: json_object` as nothing at all: the client asked for JSON and gets words with a
    200. With a schema it forces a `json_tool_call` tool and returns its input as the content."""
    r, journal, _ = send(gw, "anthropic-m", response_format={"type": "json_object"})
    (e,) = journal
    assert "tools" not in e["body"] and "json" not in e["route_can"]
    with pytest.raises(ValueError):
        json.loads(r.json()["choices"][0]["message"]["content"])
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    r, journal, _ = send(gw, "anthropic-m", response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    (e,) = journal
    assert e["body"]["tool_choice"] == {"name": "json_tool_call", "type": "tool"}
    assert json.loads(r.json()["choices"][0]["message"]["content"]) == {"a": "alpha"}


@pytest.mark.parametrize("route,finish", [("openai-m", "length"), ("anthropic-m", "length"), ("gemini-m", "length"),
                                          ("ollama-chat", "length"), ("ollama-gen", "stop")])
def test_a_token_limit_is_a_length_finish_except_through_ollama_generate(gw, route, finish):
    """LiteLLM 1.108.7's `ollama/` (transform_response) sets finish_reason "stop" whatever Ollama's
    done_reason says: a cut-off answer is reported as complete. The journal shows the provider
    said "length"."""
    r, journal, _ = send(gw, route, max_tokens=3)
    (e,) = journal
    assert e["finish"] == "length" and e["usage"]["completion_tokens"] == 3
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == finish and choice["message"]["content"] == e["answer_text"]


@pytest.mark.parametrize("route,path", [("openai-emb", "/v1/embeddings"),
                                        ("gemini-emb", "/v1beta/models/text-embedding-004:batchEmbedContents"),
                                        ("ollama-emb", "/api/embed")])
def test_embeddings_reach_each_shapes_embedding_route(gw, route, path):
    r, journal, tag = send(gw, route, "/v1/embeddings", input="hello [h:TAG]")
    (e,) = journal
    assert e["path"] == path and e["status"] == 200
    vec = r.json()["data"][0]["embedding"]
    assert vec == pytest.approx(content.embedding(ROUTES[route][3], f"hello [h:{tag}]", 16), abs=1e-6)


def test_legacy_completions_reach_the_completions_route(gw):
    r, journal, _ = send(gw, "openai-text", "/v1/completions", prompt="hello [h:TAG]", max_tokens=30)
    (e,) = journal
    assert e["path"] == "/v1/completions" and r.json()["choices"][0]["text"] == e["answer_text"]
    assert usage3(r.json()["usage"]) == e["usage"]


def test_anthropic_count_tokens_reaches_the_count_tokens_route(gw):
    r, journal, _ = send(gw, "anthropic-m", "/v1/messages/count_tokens",
                         messages=[{"role": "user", "content": "hello [h:TAG]"}])
    (e,) = journal
    assert e["path"] == "/v1/messages/count_tokens" and r.json()["input_tokens"] == e["usage"]["prompt_tokens"]


@pytest.mark.parametrize("route,path,body,upstream,text_of", [
    ("openai-m", "/v1/responses", {"input": "Say something. [h:TAG]"}, "/v1/responses",
     lambda j: "".join(p["text"] for o in j["output"] if o["type"] == "message" for p in o["content"])),
    ("anthropic-m", "/v1/messages", {"max_tokens": 64, "messages": [{"role": "user", "content": "Say something. [h:TAG]"}]},
     "/v1/messages", lambda j: j["content"][0]["text"]),
    ("gemini-m", "/v1/messages", {"max_tokens": 64, "messages": [{"role": "user", "content": "Say something. [h:TAG]"}]},
     "/v1beta/models/gemini-2.0-flash:generateContent", lambda j: j["content"][0]["text"]),
])
def test_other_client_protocols_reach_the_providers_own_route(gw, route, path, body, upstream, text_of):
    r, journal, _ = send(gw, route, path, **body)
    (e,) = journal
    assert r.status_code == 200 and e["path"] == upstream and text_of(r.json()) == e["answer_text"]


def test_no_route_litellm_called_was_left_unserved(gw):
    """Every request LiteLLM made in this module found a route the mock serves (run last)."""
    for name, ctl in gw["ctl"].items():
        assert ctl.journal(served=False) == [], name
