"""The provider smoke matrix: its definition (validated, cheapest paths, expansion into the
gateway's routes), the new mock provider shapes, and the matrix against LiteLLM proxy: green as
shipped but for named findings (text and tool-call cells), and a route broken on purpose turns
exactly its cells red. The tool-call cells both ways without a gateway: tests/test_smoke_tools.py."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest
from junitparser import JUnitXml

from harness.client.control import ProviderControl
from harness.config import ConfigError, ProviderCfg, load
from harness.secrets import Redactor
from harness.smoke.lane import run_matrix, smoke_config
from harness.smoke.matrix import NotOffered, load_matrix
from harness.world.mocks import start_mocks
from harness.world.world import World

DEFAULT = load_matrix("default")


@pytest.mark.parametrize("patch,phrase", [
    ("aliases: {fast: gemini/none}", "aliases.fast: 'gemini/none' is not a provider/model"),
    ("aliases: {x/y: gemini/gemini-1.5-pro}", "aliases.x/y: a plain alias has no provider prefix"),
    ("fallbacks: {fast: [nowhere/m]}", "fallbacks.fast: 'nowhere/m' is neither"),
    ("not_offered: [{provider: zz, why: absent}]", "not_offered[0].provider: 'zz' is not one of the providers"),
    ("select: some", "select: Input should be 'all' or 'cheapest'"),
])
def test_bad_matrices_name_the_field(tmp_path, patch, phrase):
    text = (load_matrix.__globals__["MATRICES"] / "default.yaml").read_text()
    key = patch.split(":")[0]
    text = re.sub(rf"(?ms)^{key}:.*?(?=^\S|\Z)", "", text) + "\n" + patch + "\n"
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_matrix(str(p))
    assert phrase in str(e.value), str(e.value)


def test_cheapest_path_per_provider_from_the_prices():
    cheap = DEFAULT.model_copy(update={"select": "cheapest"})
    rows = {r.name: r for r in cheap.rows()}
    # One row per provider (its cheapest offer) plus the aliases.
    assert sorted(n for n in rows if "/" in n) == ["anthropic/claude-3-5-haiku-20241022", "gemini/gemini-2.0-flash-lite",
                                                   "llamacpp/qwen2.5-7b-instruct", "ollama/llama3.2", "openai/gpt-4o-mini"]
    # 1000 input + 250 output tokens at 0.15 / 0.60 USD per million.
    assert rows["openai/gpt-4o-mini"].cost == pytest.approx(0.0003)
    assert rows["fast"].cheapest and not rows["smart"].cheapest and rows["smart"].alias_of == "anthropic/claude-sonnet-4-20250514"
    assert len(DEFAULT.rows()) == 11 and sum(r.cheapest for r in DEFAULT.rows()) == 5 + 2


def test_matrix_expands_into_gateway_routes():
    base, _ = load(None)
    cfg = smoke_config(base, DEFAULT, omit=("openai/gpt-4o-mini",))
    names = {m.name: m for m in cfg.models}
    assert set(names) == {r.name for r in DEFAULT.rows()}
    assert names["local"].provider == "ollama" and names["local"].upstream == "llama3.2"
    assert names["llamacpp/qwen2.5-7b-instruct"].gateway == {"api_key": "none"}      # a local server: no key
    assert names["openai/gpt-4o-mini"].gateway.get("omit") is True
    assert {p.kind for p in cfg.providers} == {"openai", "anthropic", "gemini", "ollama"}
    assert cfg.promises.fallbacks == DEFAULT.fallbacks and not cfg.roles.breaker and cfg.load is None


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    child, ports = start_mocks([ProviderCfg(name="g", kind="gemini"), ProviderCfg(name="o", kind="ollama", models=["llama3.2"])],
                               tmp_path_factory.mktemp("shapes"))
    yield {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    child.stop(grace_s=3)


def test_routes_say_where_a_gateway_must_send_each(tmp_path):
    # `harness smoke --routes`: what a team configuring its own gateway needs, one line per route.
    r = subprocess.run([sys.executable, "-m", "harness", "smoke", "--routes", "--json"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = {x["route"]: x for x in json.loads(r.stdout)}
    assert set(rows) == {row.name for row in load_matrix("default").rows()}
    assert rows["fast"]["kind"] == "gemini" and rows["fast"]["upstream_model"] == "gemini-2.0-flash-lite"
    assert rows["ollama/llama3.2"]["key"] == "none" and "/api/chat" in rows["ollama/llama3.2"]["api"]
    assert rows["smart"]["fallbacks"] == ["openai/gpt-4.1", "local"]
    fixed = tmp_path / "m.yaml"
    fixed.write_text("name: m\nproviders:\n  - {name: p, kind: anthropic, port: 18555, models: "
                     "[{name: c, input_per_mtok: 1, output_per_mtok: 2}]}\n")
    text = subprocess.run([sys.executable, "-m", "harness", "smoke", "--routes", "-m", str(fixed)],
                          capture_output=True, text=True, timeout=60).stdout
    assert re.search(r"^p/c\s+-> anthropic\s+127\.0\.0\.1:18555\s+model c\b.*POST /v1/messages", text, re.M), text


def test_gemini_shape(shapes):
    g = shapes["g"]
    body = {"contents": [{"role": "user", "parts": [{"text": "hi [h:g1]"}]}]}
    plain = httpx.post(g + "/v1beta/models/gemini-x:generateContent", json=body, timeout=5).json()
    text = plain["candidates"][0]["content"]["parts"][0]["text"]
    assert plain["candidates"][0]["finishReason"] == "STOP" and plain["usageMetadata"]["candidatesTokenCount"] == 12
    r = httpx.post(g + "/v1beta/models/gemini-x:streamGenerateContent?alt=sse", json=body, timeout=5)
    events = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:")]
    assert r.headers["content-type"].startswith("text/event-stream") and len(events) == 12
    assert "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events) == text
    assert "usageMetadata" in events[-1] and "usageMetadata" not in events[0]
    # A chat-completions body is not a Gemini request: 400 in Google's error shape.
    bad = httpx.post(g + "/v1beta/models/gemini-x:generateContent", json={"messages": [{"role": "user", "content": "x"}]}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    entry = ProviderControl("g", g).journal(tag="g1")[0]
    assert entry["model"] == "gemini-x" and entry["path"].endswith(":generateContent")


def test_ollama_shape(shapes):
    o = shapes["o"]
    msgs = [{"role": "user", "content": "hi"}]
    r = httpx.post(o + "/api/chat", json={"model": "llama3.2", "messages": msgs}, timeout=5)   # streams by default
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert r.headers["content-type"] == "application/x-ndjson" and [x["done"] for x in lines] == [False] * 12 + [True]
    assert lines[-1]["eval_count"] == 12 and lines[-1]["done_reason"] == "stop"
    plain = httpx.post(o + "/api/chat", json={"model": "llama3.2", "messages": msgs, "stream": False}, timeout=5).json()
    assert plain["message"]["content"] == "".join(x["message"]["content"] for x in lines)
    bad = httpx.post(o + "/api/chat", json={"model": "llama3.2", "messages": [{"content": "no role"}]}, timeout=5)
    assert bad.status_code == 400 and "role" in bad.json()["error"]
    assert [m["name"] for m in httpx.get(o + "/api/tags", timeout=5).json()["models"]] == ["llama3.2"]


def test_a_canned_answer_in_another_protocol(shapes):
    ctl = ProviderControl("o", shapes["o"])
    ctl.script(status=200, body={"object": "chat.completion", "choices": []}, tag="canned")
    r = httpx.post(shapes["o"] + "/api/chat", json={"model": "m", "messages": [{"role": "user", "content": "[h:canned]"}]}, timeout=5)
    assert r.status_code == 200 and r.json() == {"object": "chat.completion", "choices": []}


# --- against LiteLLM proxy -------------------------------------------------------------------

# LiteLLM 1.108.7 hands a chat-completions client Gemini's `responseId` as the completion's id (not
# chatcmpl-...): a real Gemini sends responseId (GenerateContentResponse, ai.google.dev/api/generate-content),
# and so does the mock, so the plain chat cells of every Gemini route are red for LiteLLM's sake.
GEMINI_ID_CELLS = {(r, "openai_chat", False) for r in ("gemini/gemini-2.0-flash-lite", "gemini/gemini-1.5-pro", "fast")}
# The tool cells (each provider's cheapest route): LiteLLM carries every call, its arguments, ids, indexes,
# finish reason and usage as the provider wrote them. Red only for causes already named elsewhere: the plain
# chat cells of the Gemini route (the responseId as the id, above), and every streamed chat cell, which asks
# for usage (include_usage) and gets it in a chunk whose choices is [{"index": 0, "delta": {}}], not [] (CM-10.2.7:
# LiteLLM builds that chunk from a default one, litellm_core_utils/streaming_handler.py:2215-2223).
TOOL_ROWS = ("openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022", "gemini/gemini-2.0-flash-lite", "ollama/llama3.2",
             "llamacpp/qwen2.5-7b-instruct")
LITELLM_TOOL_FINDINGS = {
    **{(r, "openai_chat", True, case): "the usage chunk should have choices: [], got [{\"index\": 0, \"delta\": {}}]"
       for r in TOOL_ROWS for case in ("tools", "parallel_tools")},
    **{("gemini/gemini-2.0-flash-lite", "openai_chat", False, case): "id should be a string starting with 'chatcmpl-'"
       for case in ("tools", "parallel_tools")}}


@pytest.mark.e2e
def test_the_matrix_is_green_through_litellm_but_for_geminis_ids(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness", "smoke", "-o", str(tmp_path), "-q"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "smoke.json").read_text())
    assert len(result["cells"]) == 11 * 3 * 2 + 5 * 3 * 2 * 2   # text cells, then one tool and two parallel calls
    red = {(c["row"], c["protocol"], c["stream"]): c["reason"] for c in result["cells"]
           if c["status"] != "PASS" and c["case"] == "text"}
    assert set(red) == GEMINI_ID_CELLS, red
    assert all(r.startswith("openai_chat answer: id should be a string starting with 'chatcmpl-'") for r in red.values()), red
    red_tools = {(c["row"], c["protocol"], c["stream"], c["case"]): c for c in result["cells"]
                 if c["status"] != "PASS" and c["case"] != "text"}
    assert set(red_tools) == set(LITELLM_TOOL_FINDINGS), sorted(set(red_tools) ^ set(LITELLM_TOOL_FINDINGS))
    for key, phrase in LITELLM_TOOL_FINDINGS.items():
        # ...and nothing else: the calls themselves, the finish reason and usage are right in every one.
        assert [p for p in red_tools[key]["evidence"]["problems"] if phrase not in p] == [], red_tools[key]["reason"]
    tools = {(c["row"], c["protocol"], c["stream"], c["case"]): c for c in result["cells"] if c["case"] != "text"}
    # An Anthropic client calling two tools at once on an OpenAI provider, streamed: the provider got OpenAI-shaped
    # tools (LiteLLM may use the Responses API upstream), the client Anthropic tool_use blocks with its calls.
    c = tools[("openai/gpt-4o-mini", "anthropic_messages", True, "parallel_tools")]
    up = c["evidence"]["upstream"]["openai"][0]
    assert [t.get("name") or t["function"]["name"] for t in up["body"]["tools"]] == ["get_weather", "get_time"]
    assert [(x["name"], json.loads(x["arguments"])) for x in c["evidence"]["client_calls"]] == [
        (x["name"], json.loads(x["arguments"])) for x in up["answer_calls"]]
    assert c["evidence"]["finish"] == "tool_use" and c["evidence"]["usage"] == [up["usage"]["prompt_tokens"],
                                                                                up["usage"]["completion_tokens"]]
    assert {c["id"]: c["status"] for c in result["catalog"]} == {
        "catalog.listed": "PASS", "catalog.unique": "PASS", "catalog.namespaces": "PASS",
        "catalog.fallbacks_served": "FAIL"}   # gemini/gemini-1.5-pro, in a chain, is one of the red cells
    # Both directions of translation: an Anthropic provider behind chat completions, an OpenAI one behind messages.
    cell = {(c["row"], c["protocol"], c["stream"]): c for c in result["cells"]}
    up = cell[("anthropic/claude-3-5-haiku-20241022", "openai_chat", True)]["evidence"]["upstream"]["anthropic"][0]
    assert up["path"] == "/v1/messages" and up["body"]["max_tokens"] and up["body"]["messages"][0]["role"] == "user"
    up = cell[("openai/gpt-4o-mini", "anthropic_messages", False)]["evidence"]["upstream"]["openai"][0]
    # LiteLLM 1.106 sends Anthropic-protocol clients of an OpenAI model to the Responses API upstream.
    assert re.search(r"/(chat/completions|responses)$", up["path"]) and ("input" in up["body"] or "messages" in up["body"])
    up = cell[("fast", "openai_responses", True)]["evidence"]["upstream"]["gemini"][0]
    assert up["path"] == "/v1beta/models/gemini-2.0-flash-lite:streamGenerateContent" and up["body"]["contents"]
    (suite,) = list(JUnitXml.fromfile(str(tmp_path / "junit.xml")))
    assert suite.name == "Smoke" and suite.tests == 126 + 4
    assert suite.failures == len(GEMINI_ID_CELLS) + len(LITELLM_TOOL_FINDINGS) + 1
    names = {c.name for c in suite}
    assert "anthropic_messages[stream][SMOKE-local/anthropic_messages/stream]" in names
    assert "openai_responses[plain/tools][SMOKE-ollama/llama3.2/openai_responses/plain/tools]" in names
    html = (tmp_path / "smoke.html").read_text()
    assert html.count('<a href="#ev-') == 126 and 'id="ev-125"' in html and "★" in html
    assert "<code>anthropic/claude-3-5-haiku-20241022 [parallel_tools]</code>" in html
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert not re.search(r"sk-harness-[0-9a-f]{8,}", f.read_text(errors="replace")), f


@pytest.mark.e2e
def test_a_broken_route_turns_exactly_its_cells_red(tmp_path):
    """openai/gpt-4o-mini left out of the gateway config, and the gemini provider answering in the
    chat-completions protocol: exactly those routes' cells go red (the alias `fast` routes to
    gemini too); every other cell stays green; declared NOT OFFERED cells are never sent."""
    base, path = load(None)
    # Tool cells on the broken route openai/gpt-4o-mini and on a healthy one (anthropic's cheapest).
    matrix = DEFAULT.model_copy(update={"not_offered": [
        NotOffered(provider="ollama", protocol="openai_responses", why="declared for the test")],
        "tools": ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022"]})
    cfg = smoke_config(base, matrix, omit=("openai/gpt-4o-mini",))
    key = "sk-harness-test-" + "0" * 16
    with World(cfg, path, key, Redactor([key]), log_dir=tmp_path) as world:
        assert world.info is not None
        controls = {n: p["control_url"] for n, p in world.info.providers.items()}
        wrong = {"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "x",
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
        ProviderControl("gemini", controls["gemini"]).script(status=200, body=wrong)
        result = run_matrix(cfg, matrix, world.info.gateway_url, f"Bearer {key}", controls, progress=False)
    text = [c for c in result["cells"] if c["case"] == "text"]
    red = {(c["row"], c["protocol"], c["stream"]) for c in text if c["status"] == "FAIL"}
    broken_rows = {"openai/gpt-4o-mini", "gemini/gemini-2.0-flash-lite", "gemini/gemini-1.5-pro", "fast"}
    expected = {(r, p, s) for r in broken_rows for p in matrix.protocols for s in (False, True)}
    assert red == expected, sorted(red ^ expected)
    not_offered = {(c["row"], c["protocol"]) for c in result["cells"] if c["status"] == "NOT OFFERED"}
    assert not_offered == {("ollama/llama3.2", "openai_responses"), ("local", "openai_responses")}
    green = [c for c in text if c["status"] == "PASS"]
    assert len(green) == 66 - len(expected) - 4
    reasons = {c["row"]: c["reason"] for c in text if c["status"] == "FAIL"}
    assert "openai never got the request" in reasons["openai/gpt-4o-mini"]
    # Every tool cell of the route left out is red for the same reason; the healthy route's are green but for
    # LiteLLM's include_usage chunk in its streamed chat cells (see LITELLM_TOOL_FINDINGS).
    tools = [c for c in result["cells"] if c["case"] != "text"]
    assert len(tools) == 2 * 3 * 2 * 2
    for c in tools:
        if c["row"] == "openai/gpt-4o-mini":
            assert c["status"] == "FAIL" and "openai never got the request" in c["reason"], c
        elif c["protocol"] == "openai_chat" and c["stream"]:
            assert c["status"] == "FAIL" and "the usage chunk should have choices: []" in c["reason"], c
        else:
            assert c["status"] == "PASS", c
    # Observed in LiteLLM 1.106: a non-Gemini body on a streamed Gemini call becomes a 200 stream with no
    # text and finish_reason "stop" (the plain call is a 422): only the text check catches it.
    streamed = {c["row"]: c for c in result["cells"] if c["stream"] and c["protocol"] == "openai_chat"}
    assert "the answer carried no text" in streamed["fast"]["reason"], streamed["fast"]
    catalog = {c["id"]: c for c in result["catalog"]}
    assert catalog["catalog.listed"]["status"] == "FAIL" and "openai/gpt-4o-mini" in catalog["catalog.listed"]["reason"]
    # gemini/gemini-1.5-pro sits in a fallback chain: the chain is no longer served end to end.
    assert catalog["catalog.fallbacks_served"]["status"] == "FAIL" and "gemini/gemini-1.5-pro" in catalog["catalog.fallbacks_served"]["reason"]
