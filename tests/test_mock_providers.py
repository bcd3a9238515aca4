"""The mock providers: protocol shapes, every script knob (measured), and the journal."""
from __future__ import annotations

import json
import secrets
import time

import httpx
import pytest

from harness.client.sse import SSEParser
from harness.oracles import anthropic as ao
from harness.oracles import openai_chat as oc
from harness.oracles import openai_stream as os_
from harness.oracles import responses as ro
from timing import bound


def tag() -> str:
    return "t" + secrets.token_hex(4)


def chat(url: str, t: str, stream: bool = False, timeout: float = 10, **extra):
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": f"hello [h:{t}]"}], **extra}
    if stream:
        body["stream"] = True
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=timeout)


def events(resp: httpx.Response):
    return SSEParser().feed(resp.content)


def test_openai_plain_conforms(mocks):
    r = chat(mocks["urls"]["oa"], tag())
    assert r.status_code == 200
    assert oc.full_shape(r.json()) == []


def test_openai_stream_conforms_with_usage(mocks):
    r = chat(mocks["urls"]["oa"], tag(), stream=True, stream_options={"include_usage": True})
    s = os_.parse(events(r))
    for oracle in (os_.chunk_objects, os_.same_id, os_.first_delta_role, os_.single_finish_reason_last,
                   os_.ends_with_done, os_.usage_once_final):
        assert oracle(s) == [], oracle.__name__
    plain = chat(mocks["urls"]["oa"], tag())
    assert os_.text(s) == oc.text(plain.json())  # deterministic content, tag excluded


def test_openai_tool_calls_stream_and_plain(mocks):
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
             for n in ("a", "b")]
    r = chat(mocks["urls"]["oa"], tag(), tools=tools)
    assert oc.tool_calls_shape(r.json(), expected_names=["a", "b"]) == []
    s = os_.parse(events(chat(mocks["urls"]["oa"], tag(), stream=True, tools=tools)))
    assert os_.tool_call_deltas(s) == [] and os_.parallel_indexes(s, 2) == []
    one = chat(mocks["urls"]["oa"], tag(), tools=tools, parallel_tool_calls=False).json()
    assert len(one["choices"][0]["message"]["tool_calls"]) == 1


def test_openai_json_mode(mocks):
    r = chat(mocks["urls"]["oa"], tag(), response_format={"type": "json_object"})
    assert oc.json_content(r.json()) == []


def test_openai_rejects_what_openai_rejects(mocks):
    url = mocks["urls"]["oa"]
    assert chat(url, tag(), temperature="warm").status_code == 400
    assert chat(url, tag(), stream_options={"include_usage": True}).status_code == 400
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": [{"content": "x"}]}, timeout=5)
    assert r.status_code == 400 and "role" in r.json()["error"]["message"]


AV = {"anthropic-version": "2023-06-01"}


def test_anthropic_plain_and_stream(mocks):
    url = mocks["urls"]["an"]
    body = {"model": "claude-x", "max_tokens": 20, "messages": [{"role": "user", "content": f"hi [h:{tag()}]"}]}
    plain = httpx.post(f"{url}/v1/messages", json=body, headers=AV, timeout=5)
    assert ao.message_shape(plain.json()) == []
    streamed = httpx.post(f"{url}/v1/messages", json={**body, "stream": True}, headers=AV, timeout=5)
    evs = events(streamed)
    assert ao.event_lines_match(evs) == [] and ao.event_order(evs) == [] and ao.message_delta_usage(evs) == []
    assert "ping" in [e.event for e in evs]
    assert ao.stream_text(evs) == ao.text(plain.json())
    # Anthropic providers do not speak chat completions.
    assert httpx.post(f"{url}/v1/chat/completions", json={}, timeout=5).status_code == 404


def test_responses_plain_and_stream(mocks):
    url = mocks["urls"]["oa"]
    plain = httpx.post(f"{url}/v1/responses", json={"model": "m", "input": "hi"}, timeout=5)
    assert ro.response_shape(plain.json()) == []
    streamed = httpx.post(f"{url}/v1/responses", json={"model": "m", "input": "hi", "stream": True}, timeout=5)
    assert ro.stream_events(events(streamed)) == []
    assert ro.stream_text(events(streamed)) == ro.text(plain.json())


def test_script_status_for_next_n_requests_then_healthy(mocks):
    oa, t = mocks["oa"], tag()
    oa.script(tag=t, status=503, times=2, body={"error": {"message": "down"}}, headers={"Retry-After": "3"})
    first, second, third = (chat(mocks["urls"]["oa"], t) for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["retry-after"] == "3" and first.json() == {"error": {"message": "down"}}
    # Scripts are scoped to their tag: another tag was never affected.
    assert chat(mocks["urls"]["oa"], tag()).status_code == 200
    assert [e["status"] for e in oa.journal(tag=t)] == [503, 503, 200]


def test_script_delays_are_measured(mocks):
    oa, t = mocks["oa"], tag()
    oa.script(tag=t, headers_delay_ms=300, first_token_delay_ms=200, token_delay_ms=50, tokens=5)
    t0 = time.monotonic()
    with httpx.stream("POST", f"{mocks['urls']['oa']}/v1/chat/completions", timeout=10,
                      json={"model": "m", "stream": True, "messages": [{"role": "user", "content": f"x [h:{t}]"}]}) as r:
        t_headers = time.monotonic() - t0
        parser, stamps = SSEParser(), []
        for chunk in r.iter_bytes():
            for ev in parser.feed(chunk):
                stamps.append((time.monotonic() - t0, ev))
    content = [ts for ts, ev in stamps if ev.data != "[DONE]" and json.loads(ev.data)["choices"]
               and json.loads(ev.data)["choices"][0]["delta"].get("content")]
    # Never sooner than scripted (a 20 ms margin for the clocks), and late only within the tolerance.
    assert 0.28 <= t_headers < bound(0.3)
    assert 0.48 <= content[0] < bound(0.5)               # headers delay + first-token delay
    # The gaps between tokens as the mock wrote them (its journal, on the monotonic clock): a client's
    # reads on a loaded machine merge and split them, the writes do not.
    written = oa.journal(tag=t)[0]["mono_tokens_ns"]
    gaps = [(b - a) / 1e9 for a, b in zip(written, written[1:])]
    assert len(gaps) == 4 and all(g >= 0.045 for g in gaps) and sum(gaps) < bound(0.2), gaps


def test_script_cut_after_k_chunks(mocks):
    oa, t = mocks["oa"], tag()
    oa.script(tag=t, cut_after_chunks=3)
    with pytest.raises(httpx.RemoteProtocolError):
        chat(mocks["urls"]["oa"], t, stream=True)
    (entry,) = oa.journal(tag=t)
    assert entry["cut"] and entry["chunks_sent"] == 3 and not entry["completed"]


def test_script_cut_before_headers_drops_connection(mocks):
    oa, t = mocks["oa"], tag()
    oa.script(tag=t, cut_after_chunks=0, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        chat(mocks["urls"]["oa"], t)
    assert chat(mocks["urls"]["oa"], t).status_code == 200


def test_script_omit_usage(mocks):
    oa, t = mocks["oa"], tag()
    oa.script(tag=t, omit_usage=True, times=2)
    assert "usage" not in chat(mocks["urls"]["oa"], t).json()
    s = os_.parse(events(chat(mocks["urls"]["oa"], t, stream=True, stream_options={"include_usage": True})))
    assert all(c.get("usage") is None for c in s.chunks)


def test_script_odd_streams(mocks):
    """No [DONE]; a clean end of the body mid-answer; a malformed event inserted beside the real ones;
    and the journal's time of the first token."""
    oa, url = mocks["oa"], mocks["urls"]["oa"]
    t = tag()
    oa.script(tag=t, omit_done=True, times=1)
    s = os_.parse(events(chat(url, t, stream=True)))
    assert not s.done and os_.finish_reason_value(s) == "stop"
    t = tag()
    oa.script(tag=t, tokens=30, end_after_chunks=7)
    r = chat(url, t, stream=True)            # a proper end of the body: no protocol error
    s = os_.parse(events(r))
    (entry,) = oa.journal(tag=t)
    assert r.status_code == 200 and not s.done and os_.finish_reason_value(s) is None
    assert entry["ended_early"] and not entry["completed"] and len(os_.text(s)) < len(entry["answer_text"])
    t = tag()
    oa.script(tag=t, tokens=12, malformed_insert_at_chunk=3)
    s = os_.parse(events(chat(url, t, stream=True)))
    (entry,) = oa.journal(tag=t)
    assert len(s.bad) == 1 and s.done and os_.text(s) == entry["answer_text"] and entry["malformed"]
    t = tag()
    oa.script(tag=t, first_token_delay_ms=200)
    t0 = time.time()
    chat(url, t, stream=True)
    (entry,) = oa.journal(tag=t)
    assert 0.18 <= entry["t_first_token"] - t0 < bound(0.2) and entry["t_first_token"] >= entry["t_headers"]


def test_script_rejects_unknown_fields(mocks):
    r = httpx.post(f"{mocks['urls']['oa']}/__harness/script", json={"tag": "x", "stauts": 500}, timeout=5)
    assert r.status_code == 400 and "stauts" in r.json()["error"]


def test_journal_masks_secrets_and_records_the_request(mocks):
    t = tag()
    httpx.post(f"{mocks['urls']['oa']}/v1/chat/completions", timeout=5,
               headers={"Authorization": "Bearer sk-supersecretvalue123", "x-api-key": "sk-othersecret99999"},
               json={"model": "gpt-x", "messages": [{"role": "user", "content": f"hi [h:{t}]"}]})
    (entry,) = mocks["oa"].journal(tag=t)
    assert "supersecret" not in json.dumps(entry) and "othersecret" not in json.dumps(entry)
    assert entry["headers"]["authorization"].startswith("Bearer sk-***#")
    assert entry["model"] == "gpt-x" and entry["path"] == "/v1/chat/completions" and entry["status"] == 200
    assert entry["answer_usage"]["total_tokens"] > 0 and entry["answer_text"]


def test_client_disconnect_is_journaled(mocks):
    oa, t = mocks["oa"], tag()
    oa.script(tag=t, token_delay_ms=100, tokens=40)
    with httpx.stream("POST", f"{mocks['urls']['oa']}/v1/chat/completions", timeout=10,
                      json={"model": "m", "stream": True, "messages": [{"role": "user", "content": f"x [h:{t}]"}]}) as r:
        next(r.iter_bytes())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not oa.journal(tag=t)[0]["disconnected"]:
        time.sleep(0.1)
    (entry,) = oa.journal(tag=t)
    assert entry["disconnected"] and not entry["completed"] and entry["chunks_sent"] < 40


def test_many_concurrent_streams(mocks):
    """The mock is never the bottleneck: 200 concurrent streams complete."""
    import asyncio

    async def one(client, i):
        r = await client.post(f"{mocks['urls']['oa']}/v1/chat/completions",
                              json={"model": "m", "stream": True, "messages": [{"role": "user", "content": f"n{i}"}]})
        return r.status_code, r.text.rstrip().endswith("[DONE]")

    async def main():
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as client:
            return await asyncio.gather(*(one(client, i) for i in range(200)))

    results = asyncio.run(main())
    assert results == [(200, True)] * 200


@pytest.mark.parametrize("provider,path,error_of", [
    ("oa", "/v1/chat/completions", lambda j: j["error"]["message"]),
    ("oa", "/v1/responses", lambda j: j["error"]["message"]),
    ("an", "/v1/messages", lambda j: j["error"]["message"] if j.get("type") == "error" else None),
])
def test_invalid_bodies_get_400_in_the_providers_own_error_shape(mocks, provider, path, error_of):
    url = mocks["urls"][provider]
    not_an_object = httpx.post(f"{url}{path}", json=["model", "m"], headers=AV, timeout=5)
    assert not_an_object.status_code == 400 and "JSON object" in error_of(not_an_object.json())
    missing = httpx.post(f"{url}{path}", json={"model": "m"}, headers=AV, timeout=5)
    assert missing.status_code == 400 and error_of(missing.json())


def test_a_scripted_failure_answers_before_the_body_is_validated(mocks):
    # A provider that is down does not read the request: the script's 503 wins over a 400.
    t = tag()
    mocks["oa"].script(tag=t, status=503, times=1)
    r = httpx.post(f"{mocks['urls']['oa']}/v1/responses", json={"model": "m", "note": f"[h:{t}]"}, timeout=5)
    assert r.status_code == 503


def test_the_mock_providers_run_on_uvloop_where_it_is_installed():
    # The benchmark's TTFT p99 at 1,000 streams is within 5% on uvloop, x1.08-1.11 on asyncio's
    # loop (README, load): a mock silently back on asyncio would lose that without a failing test.
    import asyncio

    from harness.mocks.server import run_loop
    seen = []

    async def which() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)
    run_loop(which())
    assert seen and seen[0].startswith("uvloop"), seen
