"""Tool calls in the smoke matrix: the tool definitions a cell sends in its client protocol, the
calls the client read back in that protocol's own shape (in order, with ids and indexes), the
finish or stop reason and the usage, judged against what the mock provider wrote (its journal:
`answer_calls`, `usage`). Every reader takes whatever a gateway sends and never raises: a field of
the wrong type is a problem to report, not a crash."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from harness.client.http import Exchange
from harness.oracles import anthropic as ao
from harness.oracles import openai_stream as os_
from harness.oracles.common import JSON_ERRORS, get, is_int, list_or_empty, short

# How each client protocol says "the answer ends in tool calls" (Responses has no finish reason:
# the response is `completed` and its output holds the function_call items).
FINISH = {"openai_chat": ("finish_reason", "tool_calls"), "anthropic_messages": ("stop_reason", "tool_use"),
          "openai_responses": ("status", "completed")}


def definitions(protocol: str, tools: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """The tools in the client protocol's shape."""
    if protocol == "openai_chat":
        return [{"type": "function", "function": t} for t in tools]
    if protocol == "openai_responses":
        return [{"type": "function", **t} for t in tools]
    return [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in tools]


@dataclass
class Read:
    """What the client read: calls in index order ({index, id, name, arguments}: arguments as
    sent, a JSON string or, in Anthropic's shape, an object), the finish reason, usage as
    (input, output) tokens, and what is malformed in the calls' own shape."""
    calls: list[dict[str, Any]] = field(default_factory=list)
    finish: Any = None
    usage: Optional[tuple[Any, Any]] = None
    problems: list[str] = field(default_factory=list)


def _in_out(usage: Any, inp: str, out: str) -> Optional[tuple[Any, Any]]:
    return (usage.get(inp), usage.get(out)) if isinstance(usage, dict) else None


def _index_key(i: Any) -> tuple[int, str]:
    return (0, f"{i:020d}") if is_int(i) and i >= 0 else (1, short(i))   # integers first, in order


# --- OpenAI chat completions --------------------------------------------------------------------

def chat_plain(obj: Any) -> Read:
    r = Read(finish=get(obj, "choices", 0, "finish_reason"), usage=_in_out(get(obj, "usage"), "prompt_tokens",
                                                                             "completion_tokens"))
    for i, c in enumerate(list_or_empty(get(obj, "choices", 0, "message", "tool_calls"))):
        if get(c, "type") != "function":
            r.problems.append(f"tool_calls[{i}].type should be 'function', got {short(get(c, 'type'))}")
        r.calls.append({"index": i, "id": get(c, "id"), "name": get(c, "function", "name"),
                        "arguments": get(c, "function", "arguments")})
    return r


def chat_stream(s: os_.Stream) -> Read:
    usages = [c["usage"] for c in s.chunks if isinstance(c.get("usage"), dict)]
    r = Read(finish=os_.finish_reason_value(s), usage=_in_out(usages[-1] if usages else None, "prompt_tokens",
                                                              "completion_tokens"))
    calls = os_.tool_calls(s)
    for idx in sorted(calls, key=_index_key):
        c = calls[idx]
        ids = [get(f, "id") for f in c["fragments"] if get(f, "id")]
        ids = [x for i, x in enumerate(ids) if x not in ids[:i]]
        if len(ids) > 1:   # a second call's fragments under the same index: the client merges them into one
            r.problems.append(f"tool calls collapsed into index {short(idx)}: its deltas carry {len(ids)} ids "
                              f"{short(ids)}, one call per index")
        r.calls.append({"index": idx, "id": c["id"], "name": c["name"], "arguments": c["arguments"]})
    if calls:
        r.problems += os_.tool_call_deltas(s)
    return r


# --- Anthropic messages -------------------------------------------------------------------------

def messages_plain(obj: Any) -> Read:
    r = Read(finish=get(obj, "stop_reason"), usage=_in_out(get(obj, "usage"), "input_tokens", "output_tokens"))
    for i, b in enumerate(list_or_empty(get(obj, "content"))):
        if get(b, "type") == "tool_use":
            r.calls.append({"index": i, "id": get(b, "id"), "name": get(b, "name"), "arguments": get(b, "input")})
    return r


def messages_stream(events: list[Any]) -> Read:
    r = Read()
    inp = out = None
    blocks: dict[Any, dict[str, Any]] = {}
    for _, d in ao.parse(events):
        kind = get(d, "type")
        if kind == "message_start":
            inp, out = get(d, "message", "usage", "input_tokens"), get(d, "message", "usage", "output_tokens")
        elif kind == "content_block_start" and get(d, "content_block", "type") == "tool_use":
            idx = get(d, "index")
            key = idx if is_int(idx) else short(idx)
            if key in blocks:
                r.problems.append(f"two tool_use blocks start at index {short(idx)}: one block per index")
            blocks[key] = {"index": idx, "id": get(d, "content_block", "id"), "name": get(d, "content_block", "name"),
                           "input": get(d, "content_block", "input"), "json": ""}
        elif kind == "content_block_delta" and get(d, "delta", "type") == "input_json_delta":
            idx = get(d, "index")
            b = blocks.get(idx if is_int(idx) else short(idx))
            part = get(d, "delta", "partial_json")
            if b is None:
                r.problems.append(f"an input_json_delta for index {short(idx)}, where no tool_use block started")
            elif isinstance(part, str):
                b["json"] += part
        elif kind == "message_delta":
            r.finish = get(d, "delta", "stop_reason")
            u = get(d, "usage")
            if isinstance(u, dict):   # cumulative: the last counts
                out = u.get("output_tokens", out)
                inp = u["input_tokens"] if u.get("input_tokens") is not None else inp
    r.usage = None if inp is None and out is None else (inp, out)
    for key in sorted(blocks, key=_index_key):
        b = blocks[key]
        # The input arrives as partial JSON; content_block_start carries an empty object.
        args = b["json"] if b["json"] else b["input"]
        r.calls.append({"index": b["index"], "id": b["id"], "name": b["name"], "arguments": args})
    return r


# --- OpenAI Responses ---------------------------------------------------------------------------

def _function_calls(response: Any) -> list[tuple[int, Any]]:
    return [(i, item) for i, item in enumerate(list_or_empty(get(response, "output")))
            if get(item, "type") == "function_call"]


def responses_plain(obj: Any) -> Read:
    r = Read(finish=get(obj, "status"), usage=_in_out(get(obj, "usage"), "input_tokens", "output_tokens"))
    for i, item in _function_calls(obj):
        r.calls.append({"index": i, "id": get(item, "call_id"), "name": get(item, "name"),
                        "arguments": get(item, "arguments")})
    return r


def responses_stream(events: list[Any]) -> Read:
    r = Read()
    items: dict[Any, dict[str, Any]] = {}
    final = None
    for ev in events:
        try:
            d = json.loads(ev.data)
        except JSON_ERRORS:
            continue
        kind, idx = get(d, "type"), get(d, "output_index")
        key = idx if is_int(idx) else short(idx)
        if kind == "response.output_item.added" and get(d, "item", "type") == "function_call":
            if key in items:
                r.problems.append(f"two function_call items added at output_index {short(idx)}")
            items[key] = {"index": idx, "id": get(d, "item", "call_id"), "name": get(d, "item", "name"),
                          "deltas": "", "done": None, "item_done": None}
        elif kind == "response.function_call_arguments.delta" and key in items:
            part = get(d, "delta")
            items[key]["deltas"] += part if isinstance(part, str) else ""
        elif kind == "response.function_call_arguments.done" and key in items:
            items[key]["done"] = get(d, "arguments")
        elif kind == "response.output_item.done" and key in items:
            items[key]["item_done"] = get(d, "item")
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            final = get(d, "response")
    r.finish = get(final, "status")
    r.usage = _in_out(get(final, "usage"), "input_tokens", "output_tokens")
    in_final = dict(_function_calls(final))
    for key in sorted(items, key=_index_key):
        it = items[key]
        args = it["deltas"] or it["done"] or get(it["item_done"], "arguments")
        where = f"function_call at output_index {short(it['index'])}"
        for source, value in (("response.function_call_arguments.done", it["done"]),
                              ("response.output_item.done", get(it["item_done"], "arguments"))):
            if value is not None and value != args:
                r.problems.append(f"{where}: the argument deltas add up to {short(args)}, {source} says {short(value)}")
        if final is not None and get(in_final.get(it["index"]) if is_int(it["index"]) else None, "arguments") != args:
            r.problems.append(f"{where}: response.completed's output does not carry it as streamed "
                              f"({short(in_final.get(it['index']) if is_int(it['index']) else None)})")
        r.calls.append({"index": it["index"], "id": it["id"] or get(it["item_done"], "call_id"),
                        "name": it["name"] or get(it["item_done"], "name"), "arguments": args})
    return r


def read(protocol: str, stream: bool, ex: Exchange) -> Read:
    if stream:
        if protocol == "openai_chat":
            return chat_stream(os_.parse(ex.events))
        return responses_stream(ex.events) if protocol == "openai_responses" else messages_stream(ex.events)
    obj = ex.json()
    if protocol == "openai_chat":
        return chat_plain(obj)
    return responses_plain(obj) if protocol == "openai_responses" else messages_plain(obj)


# --- the judgement ------------------------------------------------------------------------------

def _parsed(arguments: Any) -> tuple[bool, Any]:
    if isinstance(arguments, dict):   # Anthropic's input: already an object
        return True, arguments
    if not isinstance(arguments, str):
        return False, None
    try:
        return True, json.loads(arguments)
    except JSON_ERRORS:
        return False, None


def judge(protocol: str, r: Read, entry: dict[str, Any], provider: str, parallel: bool) -> list[str]:
    """The client's calls against the provider's, in the client's protocol: same count, and per
    index the same name and arguments (as JSON values); ids present and distinct; indexes
    distinct; the protocol's tool-use finish; usage equal to the provider's."""
    out = list(r.problems)
    wrote = entry.get("answer_calls") or []
    if not wrote:
        return out + [f"{provider} wrote no tool call: the request it got carried no tool it could call"]
    if parallel and len(wrote) < 2:
        out.append(f"{provider} wrote {len(wrote)} tool call, not 2: the request it got allowed no parallel calls "
                   f"or carried fewer tools")
    if len(r.calls) != len(wrote):
        out.append(f"the client read {len(r.calls)} tool call(s), {provider} wrote {len(wrote)} "
                   f"({', '.join(w['name'] for w in wrote)})")
    for i, (c, w) in enumerate(zip(r.calls, wrote)):
        label = f"tool call {short(c['index'])}"
        if c["name"] != w["name"]:
            out.append(f"{label}: name {short(c['name'])}, {provider} called {w['name']!r}")
        ok, args = _parsed(c["arguments"])
        want = json.loads(w["arguments"])
        if not ok:
            out.append(f"{label} ({w['name']}): arguments are not a JSON object: {short(c['arguments'])}")
        elif args != want:
            out.append(f"{label} ({w['name']}): arguments {short(args)} differ from {provider}'s {short(want)}")
        if not (isinstance(c["id"], str) and c["id"]):
            out.append(f"{label} ({w['name']}): no id, got {short(c['id'])}")
    ids = [c["id"] for c in r.calls if isinstance(c["id"], str) and c["id"]]
    if len(set(ids)) != len(ids):
        out.append(f"tool calls share ids: {short(ids)}")
    indexes = [short(c["index"]) for c in r.calls]
    if len(set(indexes)) != len(indexes):
        out.append(f"tool calls share indexes: {', '.join(indexes)}")
    name, want_finish = FINISH[protocol]
    if r.finish != want_finish:
        out.append(f"{name} should be {want_finish!r} after tool calls, got {short(r.finish)}")
    theirs = entry.get("usage")
    if isinstance(theirs, dict):   # the provider reported usage (a script may omit it)
        want_usage = (theirs.get("prompt_tokens"), theirs.get("completion_tokens"))
        if r.usage is None:
            out.append(f"the answer carried no usage; {provider} reported {want_usage[0]} in / {want_usage[1]} out")
        elif tuple(r.usage) != want_usage:
            out.append(f"usage {short(r.usage[0])} in / {short(r.usage[1])} out, {provider} reported "
                       f"{want_usage[0]} in / {want_usage[1]} out")
    return out


def calls_evidence(r: Read) -> list[dict[str, Any]]:
    return [{k: c[k] for k in ("index", "id", "name", "arguments")} for c in r.calls]
