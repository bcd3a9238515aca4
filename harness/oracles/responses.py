"""OpenAI Responses API shape, plain and streamed."""
from __future__ import annotations

import json
from typing import Any

from harness.client.sse import SSEEvent
from harness.oracles.common import Violations, get, short, usage_adds_up


def response_shape(obj: Any) -> Violations:
    if not isinstance(obj, dict):
        return [f"body is not a JSON object: {short(obj)}"]
    out: Violations = []
    if not (isinstance(obj.get("id"), str) and obj["id"].startswith("resp")):
        out.append(f"id should be a string starting with 'resp', got {short(obj.get('id'))}")
    if obj.get("object") != "response":
        out.append(f"object should be 'response', got {short(obj.get('object'))}")
    if obj.get("status") != "completed":
        out.append(f"status should be 'completed', got {short(obj.get('status'))}")
    if not isinstance(text(obj), str) or not text(obj):
        out.append(f"output has no message with output_text: {short(obj.get('output'))}")
    return out + usage_adds_up(obj.get("usage"), "usage", "input_tokens", "output_tokens", "total_tokens")


def text(obj: Any) -> str:
    return "".join(p.get("text", "") for item in (get(obj, "output") or []) if get(item, "type") == "message"
                   for p in (get(item, "content") or []) if get(p, "type") == "output_text")


def stream_events(events: list[SSEEvent]) -> Violations:
    datas = []
    out: Violations = []
    if events and events[-1].data.strip() == "[DONE]":
        events = events[:-1]   # not sent by OpenAI, but its SDK tolerates a final [DONE]
    for i, ev in enumerate(events):
        try:
            d = json.loads(ev.data)
        except ValueError:
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
    if seqs and seqs != sorted(seqs):
        out.append("sequence_number values are not increasing")
    deltas = "".join(get(d, "delta") or "" for d in datas if get(d, "type") == "response.output_text.delta")
    final = text(get(datas[-1], "response")) if datas else ""
    if final and deltas != final:
        out.append(f"text deltas {short(deltas)} do not add up to the completed text {short(final)}")
    return out[:6]


def stream_text(events: list[SSEEvent]) -> str:
    out = []
    for ev in events:
        try:
            d = json.loads(ev.data)
        except ValueError:
            continue
        if get(d, "type") == "response.output_text.delta":
            out.append(get(d, "delta") or "")
    return "".join(out)
