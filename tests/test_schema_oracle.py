"""oracles/schemas.py on what the publishers themselves show: their documented examples pass, and each
violation reads as 'path: what (the spec's component)'. Garbage is tests/test_oracles_garbage.py's."""
from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from harness.client.sse import SSEEvent
from harness.oracles import schemas as sc

# Examples from the publishers' documents (OpenAI's openapi.documented.yml x-oaiMeta examples; Anthropic's
# streaming and Messages docs), trimmed of what the schema does not judge. OpenAI's Responses examples predate
# logprobs, which its schema now requires of an output_text part and a text event: given here as [].
CHAT = {"id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion", "created": 1741570283,
        "model": "gpt-4o-2024-08-06", "choices": [{"index": 0, "message": {
            "role": "assistant", "content": "The image shows a wooden boardwalk.", "refusal": None, "annotations": []},
            "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163},
        "service_tier": "default", "system_fingerprint": "fp_fc9f1d7035"}
CHUNKS = [{"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190, "model": "gpt-4o-mini",
           "system_fingerprint": "fp_44709d6fcb", "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                                "finish_reason": finish}]}
          for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": "Hello"}, None), ({}, "stop"))]
RESPONSE = {"id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41", "object": "response", "created_at": 1741476777,
            "status": "completed", "completed_at": 1741476778, "error": None, "incomplete_details": None,
            "instructions": None, "max_output_tokens": None, "model": "gpt-4o-2024-08-06",
            "output": [{"type": "message", "id": "msg_67ccd3acc8d48190a77525dc6de64b4104becb25c45c1d41",
                        "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "text": "The image depicts a scenic landscape.", "annotations": [],
                                     "logprobs": []}]}],
            "parallel_tool_calls": True, "previous_response_id": None, "store": True, "temperature": 1,
            "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1, "truncation": "disabled",
            "usage": {"input_tokens": 328, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 52,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 380},
            "user": None, "metadata": {}}
MESSAGE = {"id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
           "content": [{"type": "text", "text": "Hi! My name is Claude."}], "stop_reason": "end_turn", "stop_sequence": None,
           "usage": {"input_tokens": 2095, "output_tokens": 503}}
ANTHROPIC_STREAM = [
    ("message_start", {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None,
                                                            "usage": {"input_tokens": 25, "output_tokens": 1}}}),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": 15}}),
    ("message_stop", {"type": "message_stop"})]
RESPONSES_STREAM = [
    {"type": "response.created", "response": {**RESPONSE, "status": "in_progress", "output": [], "usage": None},
     "sequence_number": 1},
    {"type": "response.output_item.added", "output_index": 0, "sequence_number": 2,
     "item": {"id": "msg_123", "status": "in_progress", "type": "message", "role": "assistant", "content": []}},
    {"type": "response.content_part.added", "item_id": "msg_123", "output_index": 0, "content_index": 0,
     "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}, "sequence_number": 3},
    {"type": "response.output_text.delta", "item_id": "msg_123", "output_index": 0, "content_index": 0, "delta": "In",
     "sequence_number": 4, "logprobs": []},
    {"type": "response.completed", "response": RESPONSE, "sequence_number": 5}]


def events(objs, lines: bool = False) -> list[SSEEvent]:
    return [SSEEvent(json.dumps(o[1] if lines else o), o[0] if lines else None) for o in objs]


def test_the_publishers_examples_pass():
    assert sc.chat_completion(CHAT) == []
    assert sc.chat_chunks(events(CHUNKS) + [SSEEvent("[DONE]")]) == []
    assert sc.response(RESPONSE) == [] and sc.response_events(events(RESPONSES_STREAM)) == []
    assert sc.message(MESSAGE) == [] and sc.message_events(events(ANTHROPIC_STREAM, lines=True)) == []
    assert sc.error_body({"error": {"message": "Invalid model", "type": "invalid_request_error", "param": "model",
                                    "code": None}}, "openai_responses") == []
    assert sc.error_body({"type": "error", "error": {"type": "not_found_error",
                                                     "message": "The requested resource could not be found."}},
                         "anthropic_messages") == []


def test_a_violation_names_the_path_what_and_the_component():
    chunk = json.loads(json.dumps(CHUNKS[1]))
    del chunk["choices"][0]["finish_reason"]
    assert sc.chat_chunks(events([CHUNKS[0], chunk, chunk, CHUNKS[2]])) == [
        "events 2-3 (2 of 4): choices[0].finish_reason: required, missing (CreateChatCompletionStreamResponse)"]
    msg = {**MESSAGE, "usage": {"input_tokens": "2095", "output_tokens": 503}}
    del msg["stop_sequence"]
    assert sc.message(msg) == ["stop_sequence: required, missing (Message)",
                               "usage.input_tokens: should be integer, got '2095' (Usage)"]
    assert sc.chat_completion({**CHAT, "object": "chat.completion.chunk"}) == [
        "object: should be 'chat.completion', got 'chat.completion.chunk' (CreateChatCompletionResponse)"]


def test_a_union_is_judged_through_the_member_its_type_names():
    delta = dict(ANTHROPIC_STREAM[3][1])
    del delta["index"]
    assert sc.message_events(events([delta])) == [
        "event 1: (content_block_delta) index: required, missing (RawContentBlockDeltaEvent)"]
    # Anthropic may add event types (clients must handle unknown ones); the Responses union is closed
    assert sc.message_events(events([{"type": "some_new_event"}])) == []
    (bogus,) = sc.response_events(events([{"type": "response.bogus", "sequence_number": 1}]))
    assert bogus.startswith("event 1: (response.bogus) type: should be one of") and "(ResponseStreamEvent)" in bogus
    # a field every member requires is said once, by the member
    assert sc.response_events(events([{**RESPONSES_STREAM[3], "sequence_number": None}])) == [
        "event 1: (response.output_text.delta) sequence_number: should be integer, got null (ResponseTextDeltaEvent)"]


def test_what_is_not_an_event_of_the_protocol():
    assert sc.message_events([SSEEvent("[DONE]")]) == [
        "event 1: a [DONE] sentinel, which an Anthropic Messages stream does not have"]   # OpenAI's end marker
    assert sc.chat_chunks([SSEEvent("[DONE]")]) == ["the stream carried no event to judge"]


@pytest.mark.parametrize("protocol", sorted(sc.FILES))
def test_each_schema_is_valid_and_names_its_source(protocol):
    doc = json.loads((sc.SCHEMAS / sc.FILES[protocol]).read_text())
    Draft202012Validator.check_schema(doc)
    assert "written from" in doc["$comment"] and ("@" in doc["$comment"] or "https://docs." in doc["$comment"])
    untitled = [name for name, d in doc["$defs"].items() if "title" not in d and "$comment" not in d]
    assert not untitled, untitled
