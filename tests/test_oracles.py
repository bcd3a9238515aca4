"""Oracles accept every valid payload hypothesis builds, and reject each single breakage."""
from __future__ import annotations

import copy
import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.client.sse import SSEEvent
from harness.oracles import anthropic as ao
from harness.oracles import errors as eo
from harness.oracles import models as mo
from harness.oracles import openai_chat as oc
from harness.oracles import openai_stream as os_

words = st.text(alphabet="abcdefghij ", min_size=1, max_size=20)
counts = st.integers(min_value=0, max_value=10_000)


@st.composite
def chat_completions(draw):
    p, c = draw(counts), draw(counts)
    n = draw(st.integers(min_value=1, max_value=3))
    return {
        "id": "chatcmpl-" + draw(st.text(alphabet="abcdef0123456789", min_size=1, max_size=24)),
        "object": "chat.completion", "created": int(time.time()) - draw(st.integers(0, 600)),
        "model": draw(st.sampled_from(["gpt-4o-mini", "gpt-mock", "org/model"])),
        "choices": [{"index": i, "message": {"role": "assistant", "content": draw(words)},
                     "finish_reason": draw(st.sampled_from(["stop", "length"]))} for i in range(n)],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
    }


BREAKAGES = {
    "id_prefix": lambda o: o.update(id="cmpl-123"),
    "object": lambda o: o.update(object="chat.completion.chunk"),
    "created": lambda o: o.update(created=int(time.time() * 1000)),
    "model": lambda o: o.update(model=""),
    "choices_message": lambda o: o["choices"][0]["message"].update(role="user"),
    "finish_reason": lambda o: o["choices"][0].update(finish_reason="done"),
    "usage_totals": lambda o: o["usage"].update(total_tokens=o["usage"]["total_tokens"] + 1),
}


@settings(max_examples=100, deadline=None)
@given(chat_completions())
def test_valid_chat_completion_passes_every_oracle(obj):
    assert oc.full_shape(obj) == []


@settings(max_examples=100, deadline=None)
@given(chat_completions(), st.sampled_from(sorted(BREAKAGES)))
def test_each_breakage_is_caught_by_its_oracle(obj, name):
    broken = copy.deepcopy(obj)
    BREAKAGES[name](broken)
    assert oc.SHAPE[name](broken), f"{name} did not notice the breakage"
    assert oc.SHAPE[name](obj) == []
    # ...and only by its own oracle: every other one still accepts the broken object.
    assert {k for k, oracle in oc.SHAPE.items() if k != name and oracle(broken)} == set()


@settings(max_examples=50, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers()), st.dictionaries(st.text(), st.integers())))
def test_garbage_never_crashes_an_oracle(garbage):
    assert oc.full_shape(garbage)
    for fn in (oc.json_content, oc.tool_calls_shape, ao.message_shape, mo.list_shape, eo.openai_error_object):
        assert isinstance(fn(garbage), list)


def test_json_mode_and_tool_calls():
    ok = {"choices": [{"message": {"content": '{"a": 1}'}}]}
    assert oc.json_content(ok) == []
    assert oc.json_content({"choices": [{"message": {"content": "{'a': 1}"}}]})
    assert oc.json_content({"choices": [{"message": {"content": "[1]"}}]})
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    good = {"choices": [{"message": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]}
    assert oc.tool_calls_shape(good, ["f"]) == []
    bad_args = copy.deepcopy(good)
    bad_args["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = {"a": 1}
    assert oc.tool_calls_shape(bad_args)
    wrong_finish = copy.deepcopy(good)
    wrong_finish["choices"][0]["finish_reason"] = "stop"
    assert oc.tool_calls_shape(wrong_finish)


def _sse(objs, done=True):
    evs = [SSEEvent(json.dumps(o)) for o in objs]
    return evs + ([SSEEvent("[DONE]")] if done else [])


@st.composite
def chat_streams(draw):
    cid = "chatcmpl-" + draw(st.text(alphabet="0123456789abcdef", min_size=4, max_size=12))
    texts = draw(st.lists(words, min_size=1, max_size=6))

    def chunk(delta, fr=None):
        return {"id": cid, "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": fr}]}
    chunks = [chunk({"role": "assistant", "content": ""})] + [chunk({"content": t}) for t in texts] + [chunk({}, "stop")]
    usage = draw(st.booleans())
    if usage:
        chunks.append({"id": cid, "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                       "usage": {"prompt_tokens": 3, "completion_tokens": len(texts), "total_tokens": 3 + len(texts)}})
    return chunks, usage, "".join(texts)


@settings(max_examples=100, deadline=None)
@given(chat_streams())
def test_valid_streams_pass_and_breakages_are_caught(stream):
    chunks, usage, text = stream
    s = os_.parse(_sse(chunks))
    for oracle in (os_.chunk_objects, os_.same_id, os_.first_delta_role, os_.single_finish_reason_last, os_.ends_with_done):
        assert oracle(s) == [], oracle.__name__
    assert (os_.usage_once_final(s) == []) if usage else (os_.no_usage(s) == [])
    assert os_.text(s) == text
    # Breakages, one at a time:
    assert os_.ends_with_done(os_.parse(_sse(chunks, done=False)))
    other_id = copy.deepcopy(chunks)
    other_id[-1]["id"] = "chatcmpl-other"
    assert os_.same_id(os_.parse(_sse(other_id)))
    two_finishes = copy.deepcopy(chunks)
    two_finishes[1]["choices"][0]["finish_reason"] = "stop"
    assert os_.single_finish_reason_last(os_.parse(_sse(two_finishes)))
    no_role = copy.deepcopy(chunks)
    no_role[0]["choices"][0]["delta"].pop("role")
    assert os_.first_delta_role(os_.parse(_sse(no_role)))
    if usage:
        with_choice = copy.deepcopy(chunks)
        with_choice[-1]["choices"] = [{"index": 0, "delta": {}}]   # what LiteLLM sends
        assert os_.usage_once_final(os_.parse(_sse(with_choice)))
    else:
        leaked = copy.deepcopy(chunks)
        leaked[1]["usage"] = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        assert os_.no_usage(os_.parse(_sse(leaked)))


def test_tool_call_deltas():
    def d(**kw):
        return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": [kw]}, "finish_reason": None}]}
    good = [d(index=0, id="a", function={"name": "f", "arguments": ""}), d(index=0, function={"arguments": '{"x": 1}'}),
            d(index=1, id="b", function={"name": "g", "arguments": "{}"})]
    s = os_.parse(_sse(good))
    assert os_.tool_call_deltas(s) == [] and os_.parallel_indexes(s, 2) == []
    no_id = [d(index=0, function={"name": "f", "arguments": "{}"})]
    assert os_.tool_call_deltas(os_.parse(_sse(no_id)))
    same_index = [d(index=0, id="a", function={"name": "f", "arguments": "{}"}), d(index=0, id="b", function={"name": "g", "arguments": "{}"})]
    assert os_.parallel_indexes(os_.parse(_sse(same_index)), 2)


def _anthropic_events(with_event_lines=True, order=None):
    seq = order or ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_stop",
                    "message_delta", "message_stop"]
    payload = {"message_delta": {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
               "content_block_delta": {"index": 0, "delta": {"type": "text_delta", "text": "hi"}}}
    return [SSEEvent(json.dumps({"type": t, **payload.get(t, {})}), t if with_event_lines else None) for t in seq]


def test_anthropic_stream_oracles_both_ways():
    good = _anthropic_events()
    assert ao.event_lines_match(good) == [] and ao.event_order(good) == [] and ao.message_delta_usage(good) == []
    assert ao.event_lines_match(_anthropic_events(with_event_lines=False))
    mislabeled = _anthropic_events()
    mislabeled[1].event = "message_start"
    assert ao.event_lines_match(mislabeled)
    assert ao.event_order(_anthropic_events(order=["content_block_start", "message_start", "content_block_stop", "message_delta", "message_stop"]))
    assert ao.event_order(_anthropic_events(order=["message_start", "content_block_start", "message_delta", "message_stop"]))


def test_errors_and_models():
    assert eo.client_error_status(400, None) == [] and eo.client_error_status(500, None)
    assert eo.client_error_status(None, "timed out")
    assert eo.openai_error_object({"error": {"message": "bad", "type": "invalid_request_error"}}) == []
    assert eo.openai_error_object({"detail": "bad"})
    listing = {"object": "list", "data": [{"id": "a", "object": "model"}, {"id": "b", "object": "model"}]}
    assert mo.list_shape(listing) == [] and mo.lists_all(listing, ["a", "b"]) == []
    assert mo.lists_all(listing, ["a", "llama-cpp-default"]) == [
        "configured model 'llama-cpp-default' is missing from /v1/models (it lists ['a', 'b'])"]
    listing["data"].append({"id": "a", "object": "model"})
    assert mo.no_duplicates(listing)
