"""Anthropic Messages API shape, plain and streamed."""
from __future__ import annotations

import json
from typing import Any

from harness.client.sse import SSEEvent
from harness.oracles.common import JSON_ERRORS, Violations, get, is_int, is_one_of, list_or_empty, short

STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}


def message_shape(obj: Any) -> Violations:
    if not isinstance(obj, dict):
        return [f"body is not a JSON object: {short(obj)}"]
    out: Violations = []
    if not (isinstance(obj.get("id"), str) and obj["id"]):
        out.append(f"id should be a non-empty string, got {short(obj.get('id'))}")
    if obj.get("type") != "message":
        out.append(f"type should be 'message', got {short(obj.get('type'))}")
    if obj.get("role") != "assistant":
        out.append(f"role should be 'assistant', got {short(obj.get('role'))}")
    blocks = obj.get("content")
    if not isinstance(blocks, list) or not blocks:
        out.append(f"content should be a non-empty list of blocks, got {short(blocks)}")
    else:
        for i, b in enumerate(blocks):
            if get(b, "type") == "text" and not isinstance(get(b, "text"), str):
                out.append(f"content[{i}].text should be a string, got {short(get(b, 'text'))}")
            elif get(b, "type") not in ("text", "tool_use", "thinking", "redacted_thinking"):
                out.append(f"content[{i}].type is not a known block type: {short(get(b, 'type'))}")
    if not is_one_of(obj.get("stop_reason"), STOP_REASONS):
        out.append(f"stop_reason should be one of {sorted(STOP_REASONS)}, got {short(obj.get('stop_reason'))}")
    u = obj.get("usage")
    for k in ("input_tokens", "output_tokens"):
        if not (is_int(get(u, k)) and get(u, k) >= 0):
            out.append(f"usage.{k} should be a non-negative integer, got {short(get(u, k))}")
    return out


def text(obj: Any) -> str:
    return "".join(get(b, "text") for b in list_or_empty(get(obj, "content"))
                   if get(b, "type") == "text" and isinstance(get(b, "text"), str))


def parse(events: list[SSEEvent]) -> list[tuple[SSEEvent, Any]]:
    out = []
    for ev in events:
        try:
            out.append((ev, json.loads(ev.data)))
        except JSON_ERRORS:
            out.append((ev, None))
    return out


def event_lines_match(events: list[SSEEvent]) -> Violations:
    """Every event has an `event:` line equal to its data.type (the official SDK dispatches on it)."""
    out: Violations = []
    for i, (ev, data) in enumerate(parse(events)):
        dtype = get(data, "type")
        if ev.event is None:
            out.append(f"event {i} ({short(dtype)}) has no 'event:' line")
        elif ev.event != dtype:
            out.append(f"event {i}: 'event: {ev.event}' but data.type is {short(dtype)}")
    return out[:5] or ([] if events else ["the stream carried no events"])


def event_order(events: list[SSEEvent]) -> Violations:
    """message_start, then blocks (start, deltas, stop), message_delta, message_stop; ping anywhere."""
    types = [get(d, "type") for _, d in parse(events)]
    seq = [t for t in types if t != "ping"]
    if not seq:
        return ["the stream carried no events"]
    out: Violations = []
    if seq[0] != "message_start":
        out.append(f"first event should be message_start, got {short(seq[0])}")
    if seq[-1] != "message_stop":
        out.append(f"last event should be message_stop, got {short(seq[-1])}")
    if "message_delta" not in seq:
        out.append("no message_delta event")
    elif seq.index("message_delta") < max((i for i, t in enumerate(seq) if t == "content_block_stop"), default=-1):
        out.append("message_delta comes before the last content_block_stop")
    open_block = None
    for i, t in enumerate(seq):
        if t == "content_block_start":
            if open_block is not None:
                out.append(f"event {i}: content_block_start while block {open_block} is still open")
            open_block = i
        elif t == "content_block_delta" and open_block is None:
            out.append(f"event {i}: content_block_delta outside a block")
        elif t == "content_block_stop":
            if open_block is None:
                out.append(f"event {i}: content_block_stop without a start")
            open_block = None
        elif t not in ("message_start", "message_delta", "message_stop", "content_block_delta", "error"):
            out.append(f"event {i}: unknown event type {short(t)}")
    if open_block is not None:
        out.append("a content block was never stopped")
    if "content_block_start" not in seq:
        out.append("no content block in the stream")
    return out[:6]


def message_delta_usage(events: list[SSEEvent]) -> Violations:
    deltas = [d for _, d in parse(events) if get(d, "type") == "message_delta"]
    if len(deltas) != 1:
        return [f"expected one message_delta event, got {len(deltas)}"]
    out = get(deltas[0], "usage", "output_tokens")
    if not (is_int(out) and out > 0):
        return [f"message_delta.usage.output_tokens should be a positive integer, got {short(out)}"]
    if not is_one_of(get(deltas[0], "delta", "stop_reason"), STOP_REASONS):
        return [f"message_delta.delta.stop_reason should be a stop reason, got {short(get(deltas[0], 'delta', 'stop_reason'))}"]
    return []


def stream_text(events: list[SSEEvent]) -> str:
    return "".join(get(d, "delta", "text") for _, d in parse(events)
                   if get(d, "type") == "content_block_delta" and get(d, "delta", "type") == "text_delta"
                   and isinstance(get(d, "delta", "text"), str))
