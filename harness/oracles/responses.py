"""OpenAI Responses API shape, plain and streamed."""
from __future__ import annotations

import json
from typing import Any

from harness.client.sse import SSEEvent
from harness.oracles.common import JSON_ERRORS, Violations, get, is_int, list_or_empty, short, usage_adds_up


def response_shape(obj: Any, needs_text: bool = True) -> Violations:
    """`needs_text=False`: an answer of function calls only carries no output_text."""
    if not isinstance(obj, dict):
        return [f"body is not a JSON object: {short(obj)}"]
    out: Violations = []
    if not (isinstance(obj.get("id"), str) and obj["id"].startswith("resp")):
        out.append(f"id should be a string starting with 'resp', got {short(obj.get('id'))}")
    if obj.get("object") != "response":
        out.append(f"object should be 'response', got {short(obj.get('object'))}")
    if obj.get("status") != "completed":
        out.append(f"status should be 'completed', got {short(obj.get('status'))}")
    if needs_text and not text(obj):
        out.append(f"output has no message with output_text: {short(obj.get('output'))}")
    return out + usage_adds_up(obj.get("usage"), "usage", "input_tokens", "output_tokens", "total_tokens")


def text(obj: Any) -> str:
    return "".join(get(p, "text") for item in list_or_empty(get(obj, "output")) if get(item, "type") == "message"
                   for p in list_or_empty(get(item, "content"))
                   if get(p, "type") == "output_text" and isinstance(get(p, "text"), str))


def stream_events(events: list[SSEEvent]) -> Violations:
    datas = []
    out: Violations = []
    if events and events[-1].data.strip() == "[DONE]":
        events = events[:-1]   # not sent by OpenAI, but its SDK tolerates a final [DONE]
    for i, ev in enumerate(events):
        try:
            d = json.loads(ev.data)
        except JSON_ERRORS:
            out.append(f"event {i} data is not JSON: {short(ev.data)}")
            continue
        datas.append(d)
        if ev.event is not None and ev.event != get(d, "type"):
            out.append(f"event {i}: 'event: {ev.event}' but data.type is {short(get(d, 'type'))}")
    types = [get(d, "type") for d in datas]
    if not types or types[0] != "response.created":
        out.append(f"first event should be response.created, got {short(types[:1])}")
    if not types or types[-1] != "response.completed":
        out.append(f"last event should be response.completed, got {short(types[-1:])}")
    seqs = [get(d, "sequence_number") for d in datas if get(d, "sequence_number") is not None]
    if not all(is_int(n) for n in seqs):
        out.append(f"sequence_number values should be integers, got {short(seqs)}")
    elif seqs != sorted(seqs):
        out.append("sequence_number values are not increasing")
    deltas = _deltas(datas)
    final = text(get(datas[-1], "response")) if datas else ""
    if final and deltas != final:
        out.append(f"text deltas {short(deltas)} do not add up to the completed text {short(final)}")
    return out[:6]


def _deltas(datas: list[Any]) -> str:
    return "".join(get(d, "delta") for d in datas
                   if get(d, "type") == "response.output_text.delta" and isinstance(get(d, "delta"), str))


def stream_text(events: list[SSEEvent]) -> str:
    datas = []
    for ev in events:
        try:
            datas.append(json.loads(ev.data))
        except JSON_ERRORS:
            continue
    return _deltas(datas)
