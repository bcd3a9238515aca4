"""OpenAI chat completion (non-streamed) shape."""
from __future__ import annotations

import json
import time
from typing import Any, Optional

from harness.oracles.common import (JSON_ERRORS, Violations, all_distinct, get, is_int, is_one_of, short,
                                    usage_adds_up)

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


def id_prefix(obj: Any) -> Violations:
    v = get(obj, "id")
    return [] if isinstance(v, str) and v.startswith("chatcmpl-") and len(v) > 9 else \
        [f"id should be a string starting with 'chatcmpl-', got {short(v)}"]


def object_field(obj: Any) -> Violations:
    v = get(obj, "object")
    return [] if v == "chat.completion" else [f"object should be 'chat.completion', got {short(v)}"]


def created(obj: Any, now: Optional[float] = None, skew_s: float = 3600) -> Violations:
    v, now = get(obj, "created"), now or time.time()
    if not is_int(v):
        return [f"created should be an integer Unix time in seconds, got {short(v)}"]
    off = v - round(now)   # in integers: a float overflows on a gateway's 10**400
    if abs(off) > skew_s:
        return [f"created {v} is {off:+d}s away from now (seconds expected, not ms)"]
    return []


def model_field(obj: Any, expected: Optional[str] = None) -> Violations:
    v = get(obj, "model")
    if not isinstance(v, str) or not v:
        return [f"model should be a non-empty string, got {short(v)}"]
    if expected is not None and v != expected:
        return [f"model should be {expected!r}, got {v!r}"]
    return []


def choices_message(obj: Any) -> Violations:
    choices = get(obj, "choices")
    if not isinstance(choices, list) or not choices:
        return [f"choices should be a non-empty list, got {short(choices)}"]
    out: Violations = []
    for i, ch in enumerate(choices):
        if get(ch, "index") != i:
            out.append(f"choices[{i}].index should be {i}, got {short(get(ch, 'index'))}")
        msg = get(ch, "message")
        if not isinstance(msg, dict):
            out.append(f"choices[{i}].message should be an object, got {short(msg)}")
            continue
        if msg.get("role") != "assistant":
            out.append(f"choices[{i}].message.role should be 'assistant', got {short(msg.get('role'))}")
        c = msg.get("content")
        if c is not None and not isinstance(c, str):
            out.append(f"choices[{i}].message.content should be a string or null, got {short(c)}")
        if c is None and not msg.get("tool_calls") and not msg.get("refusal"):
            out.append(f"choices[{i}].message has neither content nor tool_calls")
    return out


def finish_reason(obj: Any, expected: Optional[str] = None) -> Violations:
    choices = get(obj, "choices")
    if not choices:
        return ["no choices to read finish_reason from"]
    if not isinstance(choices, list):
        return [f"choices should be a list to read finish_reason from, got {short(choices)}"]
    out: Violations = []
    for i, ch in enumerate(choices):
        fr = get(ch, "finish_reason")
        if not is_one_of(fr, FINISH_REASONS):
            out.append(f"choices[{i}].finish_reason should be one of {sorted(FINISH_REASONS)}, got {short(fr)}")
        elif expected and fr != expected:
            out.append(f"choices[{i}].finish_reason should be {expected!r}, got {fr!r}")
    return out


def usage_totals(obj: Any) -> Violations:
    return usage_adds_up(get(obj, "usage"), "usage")


def json_content(obj: Any) -> Violations:
    content = get(obj, "choices", 0, "message", "content")
    if not isinstance(content, str):
        return [f"JSON mode: choices[0].message.content should be a string, got {short(content)}"]
    try:
        parsed = json.loads(content)
    except json.JSONDecodeError as exc:
        return [f"JSON mode: content is not valid JSON ({exc.msg} at {exc.pos}): {short(content)}"]
    except JSON_ERRORS as exc:   # nested too deep, or an integer too long: no .msg to quote
        return [f"JSON mode: content could not be decoded ({exc}): {short(content)}"]
    return [] if isinstance(parsed, dict) else [f"JSON mode: content should be a JSON object, got {short(parsed)}"]


def tool_calls_shape(obj: Any, expected_names: Optional[list[str]] = None) -> Violations:
    msg = get(obj, "choices", 0, "message")
    calls = get(msg, "tool_calls")
    if not isinstance(calls, list) or not calls:
        return [f"choices[0].message.tool_calls should be a non-empty list, got {short(calls)}"]
    out: Violations = []
    for i, c in enumerate(calls):
        where = f"tool_calls[{i}]"
        if not (isinstance(get(c, "id"), str) and get(c, "id")):
            out.append(f"{where}.id should be a non-empty string, got {short(get(c, 'id'))}")
        if get(c, "type") != "function":
            out.append(f"{where}.type should be 'function', got {short(get(c, 'type'))}")
        if not isinstance(get(c, "function", "name"), str):
            out.append(f"{where}.function.name should be a string, got {short(get(c, 'function', 'name'))}")
        args = get(c, "function", "arguments")
        if not isinstance(args, str):
            out.append(f"{where}.function.arguments should be a JSON string, got {short(args)}")
        else:
            try:
                json.loads(args)
            except JSON_ERRORS:
                out.append(f"{where}.function.arguments is not valid JSON: {short(args)}")
    if not all_distinct([get(c, "id") for c in calls]):
        out.append("tool_calls ids are not distinct")
    if get(obj, "choices", 0, "finish_reason") != "tool_calls":
        out.append(f"finish_reason should be 'tool_calls' with tool calls, got {short(get(obj, 'choices', 0, 'finish_reason'))}")
    if expected_names is not None:
        names = [get(c, "function", "name") for c in calls]
        if names != expected_names:
            out.append(f"tool calls should call {expected_names}, got {names}")
    return out


def text(obj: Any) -> Optional[str]:
    c = get(obj, "choices", 0, "message", "content")
    return c if isinstance(c, str) else None


SHAPE = {"id_prefix": id_prefix, "object": object_field, "created": created, "model": model_field,
         "choices_message": choices_message, "finish_reason": finish_reason, "usage_totals": usage_totals}


def full_shape(obj: Any) -> Violations:
    if not isinstance(obj, dict):
        return [f"body is not a JSON object: {short(obj)}"]
    return [v for fn in SHAPE.values() for v in fn(obj)]
