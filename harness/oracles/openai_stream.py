"""OpenAI chat completion streaming (SSE) shape."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from harness.client.sse import SSEEvent
from harness.oracles.common import JSON_ERRORS, Violations, all_distinct, get, list_or_empty, short, usage_adds_up


@dataclass
class Stream:
    chunks: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False                   # saw `data: [DONE]`
    after_done: int = 0                  # events after [DONE]
    bad: list[str] = field(default_factory=list)   # events whose data is not a JSON object


def parse(events: list[SSEEvent]) -> Stream:
    s = Stream()
    for i, ev in enumerate(events):
        if s.done:
            s.after_done += 1
            continue
        if ev.data.strip() == "[DONE]":
            s.done = True
            continue
        try:
            obj = json.loads(ev.data)
        except JSON_ERRORS:
            obj = None
        if isinstance(obj, dict):
            s.chunks.append(obj)
        else:
            s.bad.append(f"event {i} data is not a JSON object: {short(ev.data)}")
    return s


def content_type(ct: str) -> Violations:
    return [] if ct.split(";")[0].strip().lower() == "text/event-stream" else \
        [f"Content-Type should be text/event-stream, got {ct!r}"]


def well_formed(s: Stream) -> Violations:
    return list(s.bad) + ([] if s.chunks else ["the stream carried no chunks"])


def chunk_objects(s: Stream) -> Violations:
    return [f"chunk {i}: object should be 'chat.completion.chunk', got {short(c.get('object'))}"
            for i, c in enumerate(s.chunks) if c.get("object") != "chat.completion.chunk"] + s.bad


def same_id(s: Stream) -> Violations:
    ids = [c.get("id") for c in s.chunks]
    if not ids or not isinstance(ids[0], str) or not ids[0]:
        return [f"first chunk id should be a non-empty string, got {short(ids[0] if ids else None)}"]
    return [f"chunk {i}: id {short(x)} differs from the first chunk's {ids[0]!r}"
            for i, x in enumerate(ids) if x != ids[0]][:5]


def _choice_chunks(s: Stream) -> list[tuple[int, dict[str, Any]]]:
    return [(i, c) for i, c in enumerate(s.chunks) if isinstance(c.get("choices"), list) and c["choices"]]


def first_delta_role(s: Stream) -> Violations:
    cc = _choice_chunks(s)
    if not cc:
        return ["no chunk with choices"]
    role = get(cc[0][1], "choices", 0, "delta", "role")
    return [] if role == "assistant" else [f"first delta should carry role 'assistant', got {short(role)}"]


def single_finish_reason_last(s: Stream) -> Violations:
    cc = _choice_chunks(s)
    with_fr = [i for i, c in cc if any(get(ch, "finish_reason") is not None for ch in c["choices"])]
    if len(with_fr) != 1:
        return [f"exactly one chunk should carry a non-null finish_reason, found {len(with_fr)} (chunks {with_fr[:5]})"]
    if cc and with_fr[0] != cc[-1][0]:
        return [f"finish_reason is in chunk {with_fr[0]}, but the last chunk with choices is {cc[-1][0]}"]
    return []


def ends_with_done(s: Stream) -> Violations:
    if not s.done:
        return ["the stream did not end with 'data: [DONE]'"]
    return [f"{s.after_done} event(s) after 'data: [DONE]'"] if s.after_done else []


def usage_once_final(s: Stream) -> Violations:
    """With stream_options.include_usage: usage once, in a final chunk whose choices is []."""
    with_usage = [i for i, c in enumerate(s.chunks) if c.get("usage") is not None]
    if len(with_usage) != 1:
        return [f"usage should come in exactly one chunk, found {len(with_usage)} (chunks {with_usage[:5]})"]
    i = with_usage[0]
    out: Violations = []
    if i != len(s.chunks) - 1:
        out.append(f"the usage chunk ({i}) is not the last chunk ({len(s.chunks) - 1})")
    if s.chunks[i].get("choices") != []:
        out.append(f"the usage chunk should have choices: [], got {short(s.chunks[i].get('choices'))}")
    return out + usage_adds_up(s.chunks[i]["usage"], f"chunk {i}.usage")


def no_usage(s: Stream) -> Violations:
    return [f"chunk {i} carries usage without stream_options.include_usage: {short(c['usage'])}"
            for i, c in enumerate(s.chunks) if c.get("usage") is not None][:3]


def text(s: Stream) -> str:
    return "".join(
        ch["delta"]["content"] for c in s.chunks for ch in list_or_empty(c.get("choices"))
        if isinstance(get(ch, "delta", "content"), str)
    )


def tool_calls(s: Stream) -> dict[int, dict[str, Any]]:
    """Reassembled tool calls by index: {index: {id, name, arguments, fragments}}."""
    calls: dict[int, dict[str, Any]] = {}
    for c in s.chunks:
        for ch in list_or_empty(c.get("choices")):
            for d in list_or_empty(get(ch, "delta", "tool_calls")):
                idx = get(d, "index")
                if isinstance(idx, (list, dict)):
                    idx = short(idx)   # unhashable; its text keys the call, and is still no integer index
                call = calls.setdefault(idx, {"id": None, "name": None, "arguments": "", "fragments": []})
                call["fragments"].append(d)
                call["id"] = call["id"] or get(d, "id")
                call["name"] = call["name"] or get(d, "function", "name")
                args = get(d, "function", "arguments")
                call["arguments"] += args if isinstance(args, str) else ""   # tool_call_deltas reports the rest
    return calls


def tool_call_deltas(s: Stream) -> Violations:
    calls = tool_calls(s)
    if not calls:
        return ["no tool_calls deltas in the stream"]
    out: Violations = []
    for idx, call in calls.items():
        if not isinstance(idx, int):
            out.append(f"a tool_calls delta has no integer index: {short(call['fragments'][0])}")
            continue
        first = call["fragments"][0]
        if not get(first, "id"):
            out.append(f"tool call {idx}: first fragment has no id: {short(first)}")
        if not get(first, "function", "name"):
            out.append(f"tool call {idx}: first fragment has no function.name: {short(first)}")
        odd = [f for f in call["fragments"] if get(f, "function", "arguments") is not None
               and not isinstance(get(f, "function", "arguments"), str)]
        if odd:
            out.append(f"tool call {idx}: arguments fragment is not a string: {short(odd[0])}")
        try:
            json.loads(call["arguments"])
        except JSON_ERRORS:
            out.append(f"tool call {idx}: reassembled arguments are not valid JSON: {short(call['arguments'])}")
    return out


def parallel_indexes(s: Stream, expected: int = 2) -> Violations:
    calls = tool_calls(s)
    ids = [c["id"] for c in calls.values()]
    out: Violations = []
    if len(calls) != expected:
        out.append(f"expected {expected} tool calls with distinct indexes, got indexes {sorted(calls, key=str)}")
    if not all_distinct(ids):
        out.append(f"parallel tool calls share ids: {ids}")
    return out


def finish_reason_value(s: Stream) -> Optional[str]:
    for c in s.chunks:
        for ch in list_or_empty(c.get("choices")):
            if get(ch, "finish_reason") is not None:
                return ch["finish_reason"]
    return None
