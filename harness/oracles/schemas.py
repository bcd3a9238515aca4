"""Strict checks of what a gateway answers against the published API schemas (CM-27).

Our own compact JSON Schemas of each client protocol live in harness/schemas/*.json, each definition
titled with the component of the published spec it follows (their $comment says where we read it).
Every object is validated whole, with jsonschema, and each violation is one readable line with its
JSON path, what is wrong and the component, e.g.
    choices[0].finish_reason: required, missing (CreateChatCompletionStreamResponse)
A stream's events are judged one by one; the same violation in many events is one line naming them.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from harness.client.sse import SSEEvent
from harness.oracles.common import JSON_ERRORS, Violations, short

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
FILES = {"openai_chat": "openai_chat.json", "openai_responses": "openai_responses.json",
         "anthropic_messages": "anthropic_messages.json"}
# The error body of each protocol: the OpenAI spec has one ErrorResponse for all its routes.
ERROR_BODY = {"openai_chat": ("openai_chat", "ErrorResponse"), "openai_responses": ("openai_chat", "ErrorResponse"),
              "anthropic_messages": ("anthropic_messages", "ErrorResponse")}


@lru_cache(maxsize=None)
def _document(protocol: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / FILES[protocol]).read_text())


@lru_cache(maxsize=None)
def _validator(protocol: str, definition: str) -> Draft202012Validator:
    doc = _document(protocol)
    name, own = (definition[:-len(OWN)], True) if definition.endswith(OWN) else (definition, False)
    if name not in doc["$defs"]:
        raise KeyError(f"{FILES[protocol]} has no definition {name!r}")
    if own:
        return Draft202012Validator({**doc, **{k: v for k, v in doc["$defs"][name].items() if k != "allOf"}})
    return Draft202012Validator({**doc, "$ref": f"#/$defs/{definition}"})


def validate(obj: Any, protocol: str, definition: str) -> Violations:
    """Violations of `obj` against one definition of the protocol's schema, most specific first per place."""
    try:
        errors = list(_validator(protocol, definition).iter_errors(obj))
        seen: dict[str, tuple[int, str]] = {}
        for e in errors:
            where, what = _describe(e)
            # The same fault reached through two definitions (a union and its member): keep the deeper one.
            depth = len(e.absolute_schema_path)
            if where + what not in seen or depth > seen[where + what][0]:
                seen[where + what] = (depth, f"{where}: {what} ({_component(protocol, e, definition)})")
        return [line for _, line in sorted(seen.values(), key=lambda v: v[1])]
    except RecursionError:   # a value nested deeper than Python follows: no verdict on it, and no crash
        return [f"{definition.removesuffix(OWN)}: nested too deep to judge"]


def chat_completion(obj: Any) -> Violations:
    return validate(obj, "openai_chat", "CreateChatCompletionResponse")


def response(obj: Any) -> Violations:
    return validate(obj, "openai_responses", "Response")


def message(obj: Any) -> Violations:
    return validate(obj, "anthropic_messages", "MessageResponse")


def error_body(obj: Any, protocol: str) -> Violations:
    return validate(obj, *ERROR_BODY[protocol])


def chat_chunks(events: list[SSEEvent]) -> Violations:
    """Every chunk of a chat completions stream; `data: [DONE]` is the stream's end, not a chunk."""
    return _events(events, "openai_chat", "CreateChatCompletionStreamResponse", done_marker=True)


def response_events(events: list[SSEEvent]) -> Violations:
    """Every event of a Responses stream, which ends with response.completed: a `data: [DONE]` is
    chat completions' sentinel carried over, said as such rather than as data that is not JSON."""
    return _events(events, "openai_responses", "ResponseStreamEvent", done_marker=False,
                   no_done="the Responses stream")


def message_events(events: list[SSEEvent]) -> Violations:
    """Every event of a Messages stream, which ends with message_stop: a `data: [DONE]` is named as
    the sentinel it does not have (a gateway translating from chat completions may carry it over)."""
    return _events(events, "anthropic_messages", "MessageStreamEvent", done_marker=False,
                   no_done="an Anthropic Messages stream")


def _events(events: list[SSEEvent], protocol: str, definition: str, done_marker: bool,
            no_done: Optional[str] = None) -> Violations:
    """`done_marker`: `data: [DONE]` ends the stream and is no event; `no_done`: the stream's name,
    when a [DONE] in it is to be named as the sentinel it does not have."""
    found: dict[str, list[int]] = {}   # violation -> the (1-based) events that have it, in order
    judged = 0
    for n, ev in enumerate(events, 1):
        data = ev.data if isinstance(ev.data, str) else ""
        if done_marker and data.strip() == "[DONE]":
            continue
        judged += 1
        if no_done and data.strip() == "[DONE]":
            found.setdefault(f"a [DONE] sentinel, which {no_done} does not have", []).append(n)
            continue
        for v in _event(protocol, definition, data):
            found.setdefault(v, []).append(n)
    out = [f"{_which(ns, len(events))}: {v}" for v, ns in found.items()]
    return out if judged else out + ["the stream carried no event to judge"]


@lru_cache(maxsize=4096)
def _event(protocol: str, definition: str, data: str) -> tuple[str, ...]:
    """One event's violations, by its data (a stream repeats the same events; so do the garbage tests).
    A union of events is judged through the member its type names, not by trying every member."""
    try:
        obj = json.loads(data)
    except JSON_ERRORS:
        return (f"data is not JSON: {short(data, 60)}",)
    label = obj.get("type") if isinstance(obj, dict) and isinstance(obj.get("type"), str) else None
    member = _members(protocol, definition).get(label or "")
    if member is None:
        found = validate(obj, protocol, definition)
    else:   # the member's violations, then the union's own (type, the fields every member has) not said already
        found = validate(obj, protocol, member)
        said = {v.rsplit(" (", 1)[0] for v in found}
        found += [v for v in validate(obj, protocol, definition + OWN) if v.rsplit(" (", 1)[0] not in said]
    return tuple(f"({label[:40]}) {v}" if label else v for v in found)


OWN = "#own"   # a union's definition without its members (its allOf of if/then branches)


@lru_cache(maxsize=None)
def _members(protocol: str, definition: str) -> dict[str, str]:
    """A union's members by the type they are for: {"content_block_delta": "RawContentBlockDeltaEvent", ...}."""
    out: dict[str, str] = {}
    for branch in _document(protocol)["$defs"][definition].get("allOf", []):
        when = branch.get("if", {}).get("properties", {}).get("type", {})
        target = branch.get("then", {}).get("$ref", "")
        for name in ([when["const"]] if "const" in when else when.get("enum", [])):
            out[name] = target.rsplit("/", 1)[-1]
    return out


def _which(numbers: list[int], total: int) -> str:
    """'event 3', or 'events 1-4, 7 (5 of 9)'."""
    if len(numbers) == 1:
        return f"event {numbers[0]}"
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"events {text} ({len(numbers)} of {total})"


def _describe(e: ValidationError) -> tuple[str, str]:
    """(JSON path, what is wrong there) for one jsonschema error."""
    where = _path(e.absolute_path)
    if e.validator == "required" and isinstance(e.instance, dict):
        missing = next((p for p in e.validator_value if p not in e.instance and repr(p) in e.message), None)
        if missing is not None:
            return (f"{where}.{missing}" if where else missing), "required, missing"
    if e.validator == "type":
        types = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
        return where or "(root)", f"should be {' or '.join(map(str, types))}, got {_show(e.instance)}"
    if e.validator == "enum":
        return where or "(root)", f"should be one of {_show(e.validator_value, 200)}, got {_show(e.instance)}"
    if e.validator == "const":
        return where or "(root)", f"should be {_show(e.validator_value)}, got {_show(e.instance)}"
    return where or "(root)", short(e.message, 160)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _show(value: Any, limit: int = 80) -> str:
    try:
        return short(value, limit)
    except (ValueError, RecursionError):   # what json.dumps cannot write (a surrogate is fine; depth is not)
        return f"a {type(value).__name__}"


def _component(protocol: str, e: ValidationError, default: str) -> str:
    """The title of the innermost schema on the error's path: the component of the published spec."""
    doc = _document(protocol)
    name = default.removesuffix(OWN)
    # the validator's root: a reference to the definition, or (a union's own) the definition itself
    node: Any = doc["$defs"].get(name, {}) if default.endswith(OWN) else {"$ref": f"#/$defs/{name}"}

    def enter(n: Any) -> Any:
        """Follows a schema's $ref (jsonschema's paths step through one without naming it), noting titles."""
        nonlocal name
        for _ in range(20):   # our refs never chain this deep; a bound all the same
            if not isinstance(n, dict):
                return n
            if isinstance(n.get("title"), str):
                name = n["title"]
            if not isinstance(n.get("$ref"), str):
                return n
            n = doc["$defs"].get(n["$ref"].rsplit("/", 1)[-1], {})
        return n

    for key in e.absolute_schema_path:
        node = enter(node)
        if isinstance(node, dict):
            node = node.get(key, {})
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            node = {}
    return name
