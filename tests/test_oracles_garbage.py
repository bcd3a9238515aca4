"""Hypothesis feeds broken responses to every oracle: an oracle never raises, it returns violations.

A gateway can send anything, and a check that crashes on it reports a harness ERROR instead of a
finding. So every public function in harness/oracles (judges, parsers, text extractors, helpers)
is listed below with the input it gets in production, and fed garbage of that kind: arbitrary
JSON, dicts with the right keys but wrong types inside, mutated valid payloads, SSE events with
garbage data or no [DONE], and raw bytes (invalid UTF-8 included) cut into events by our parser.
A new public function that is not listed fails `test_every_public_oracle_function_is_listed`.
"""
from __future__ import annotations

import copy
import importlib
import inspect
import json
import pkgutil
import time
from typing import Any, Callable

from hypothesis import example, given, settings
from hypothesis import strategies as st

import harness.oracles
from harness.client.sse import SSEEvent, SSEParser
from harness.oracles import anthropic as ao
from harness.oracles import common as co
from harness.oracles import concurrency as cc
from harness.oracles import errors as eo
from harness.oracles import metrics as me
from harness.oracles import keys as ko
from harness.oracles import models as mo
from harness.oracles import openai_chat as oc
from harness.oracles import openai_stream as os_
from harness.oracles import responses as ro
from harness.oracles import schemas as sc
from harness.oracles import silent_route as sr

GARBAGE = settings(max_examples=150, deadline=None)
# Text json.loads fails on with more than a JSONDecodeError: nested deeper than the recursion limit
# (RecursionError), and an integer past the 4300-digit conversion limit (a plain ValueError, no .msg).
TOO_DEEP = "[" * 2_000
LONG_INT = "1" * 5_000


# --- what each function returns when it returns normally -------------------------------------

def is_violations(r: Any) -> bool:
    return isinstance(r, list) and all(isinstance(v, str) for v in r)


def is_str(r: Any) -> bool:
    return isinstance(r, str)


def anything(r: Any) -> bool:
    return True


def judged(fn: Callable, call: Callable | None = None, returns: Callable[[Any], bool] = is_violations):
    """fn is what the listing test counts; call adapts it to one drawn input (extra arguments fixed)."""
    return fn, call or fn, returns


# --- the tables: every public function, by the input it judges -------------------------------

GET_PATHS = [("choices", 0, "message"), ("usage", "total_tokens"), (-1,), (10**20, "x"), ()]

PAYLOAD = [   # a parsed JSON body (Exchange.json(): any JSON value, or None when it was not JSON)
    judged(ao.message_shape),
    judged(ao.text, returns=is_str),
    judged(oc.id_prefix),
    judged(oc.object_field),
    judged(oc.created),
    judged(oc.model_field, lambda o: oc.model_field(o) + oc.model_field(o, "gpt-mock")),
    judged(oc.choices_message),
    judged(oc.finish_reason, lambda o: oc.finish_reason(o) + oc.finish_reason(o, "stop")),
    judged(oc.usage_totals),
    judged(oc.json_content),
    judged(oc.tool_calls_shape, lambda o: oc.tool_calls_shape(o) + oc.tool_calls_shape(o, ["f", "g"])),
    judged(oc.text, returns=lambda r: r is None or isinstance(r, str)),
    judged(oc.full_shape),
    judged(ro.response_shape),
    judged(ro.text, returns=is_str),
    judged(mo.list_shape),
    judged(mo.ids, returns=lambda r: isinstance(r, list) and all(isinstance(i, str) for i in r)),
    judged(mo.lists_all, lambda o: mo.lists_all(o, ["gpt-mock", "a"])),
    judged(mo.no_duplicates),
    judged(eo.openai_error_object),
    # a key's spend as the admin API answered it; a usage object (the journal's, priced)
    judged(ko.spend_matches, lambda o: ko.spend_matches(o, 1e-5, 0.01)),
    judged(ko.tokens, lambda o: ko.tokens(o, "prompt_tokens"), returns=lambda r: r is None or isinstance(r, int)),
    judged(ko.cost, lambda o: ko.cost(o if isinstance(o, list) else [o], 1e-6, 2e-6),
           returns=lambda r: isinstance(r, float)),
    judged(sc.chat_completion),
    judged(sc.response),
    judged(sc.message),
    judged(sc.error_body, lambda o: sc.error_body(o, "openai_chat") + sc.error_body(o, "anthropic_messages")),
    judged(sc.validate, lambda o: sc.validate(o, "openai_responses", "ResponseStreamEvent")
           + sc.validate(o, "anthropic_messages", "MessageStreamEvent")),
    judged(co.short, returns=is_str),
    judged(co.get, lambda o: [co.get(o, *p) for p in GET_PATHS], returns=anything),
    judged(co.is_int, returns=lambda r: isinstance(r, bool)),
    judged(co.usage_adds_up, lambda o: co.usage_adds_up(o, "usage")),
    judged(co.is_one_of, lambda o: co.is_one_of(o, oc.FINISH_REASONS), returns=lambda r: isinstance(r, bool)),
    judged(co.list_or_empty, returns=lambda r: isinstance(r, list)),
    judged(co.all_distinct, lambda o: co.all_distinct(co.list_or_empty(o) + [o]),
           returns=lambda r: isinstance(r, bool)),
]

EVENTS = [   # the SSE events of a streamed exchange (Exchange.events)
    judged(ao.parse, returns=lambda r: isinstance(r, list)),
    judged(ao.event_lines_match),
    judged(ao.event_order),
    judged(ao.message_delta_usage),
    judged(ao.stream_text, returns=is_str),
    judged(os_.parse, returns=lambda r: isinstance(r, os_.Stream)),
    judged(ro.stream_events),
    judged(ro.stream_text, returns=is_str),
    judged(sc.chat_chunks),
    judged(sc.response_events),
    judged(sc.message_events),
]

STREAM = [   # os_.parse(events): the OpenAI chunk oracles never see the events themselves
    judged(os_.well_formed),
    judged(os_.chunk_objects),
    judged(os_.same_id),
    judged(os_.first_delta_role),
    judged(os_.single_finish_reason_last),
    judged(os_.ends_with_done),
    judged(os_.usage_once_final),
    judged(os_.no_usage),
    judged(os_.text, returns=is_str),
    judged(os_.tool_calls, returns=lambda r: isinstance(r, dict)),
    judged(os_.tool_call_deltas),
    judged(os_.parallel_indexes),
    # Not str-checked: it hands back whatever finish_reason the gateway sent (the annotation says str).
    judged(os_.finish_reason_value, returns=anything),
]

HEADERS = [   # a Content-Type header value
    judged(os_.content_type),
]


def _samples(text: str) -> list:
    return me.parse(text)[0]


METRICS_TEXT = [   # the text of a metrics scrape (checks/metrics.py), and what is read from it
    judged(me.parse, returns=lambda r: isinstance(r[0], list) and (r[1] is None or isinstance(r[1], str))),
    judged(me.total, lambda t: me.total(_samples(t), "x_total", "model", "m"),
           returns=lambda r: r is None or isinstance(r, float)),
    judged(me.delta, lambda t: me.delta(me.total(_samples(t), "x_sum", "model", "m"),
                                        me.total(_samples(t), "x_total", "model", "m")),
           returns=lambda r: isinstance(r, float)),
    judged(me.counter_violations, lambda t: me.counter_violations(
        "x", me.delta(None, me.total(_samples(t), "x_total", "model", "m")), 3)),
    judged(me.latency_violations, lambda t: me.latency_violations(
        me.delta(None, me.total(_samples(t), "x_sum", "model", "m")),
        me.delta(None, me.total(_samples(t), "x_count", "model", "m")), 3, 0.1, "s", 50, 0.1)[0]),
]

STATUS = [   # (status, transport error) of an exchange
    judged(eo.client_error_status, lambda pair: eo.client_error_status(*pair)),
    # a request sent with a client key, after a change to it (checks/keys.py makes a Probe of each)
    judged(ko.refusal, lambda pair: ko.refusal([ko.Probe(0.5, pair[0], True, pair[1])], 1.0, {401, 403}, "x")[0]),
    judged(ko.acceptance, lambda pair: ko.acceptance([ko.Probe(0.5, pair[0], False, pair[1])], 1.0, "x")),
    judged(ko.first_accepted, lambda pair: ko.first_accepted([ko.Probe(0.5, pair[0], True, pair[1])]), returns=anything),
    # the answers of requests held at, sent over and sent after a concurrency cap (checks/concurrency.py)
    judged(cc.within_limit, lambda pair: cc.within_limit([pair, (200, None)], 2)),
    judged(cc.timed_out, lambda pair: cc.timed_out([pair, (504, None)])),
    judged(cc.refusal, lambda pair: cc.refusal(pair[0], pair[1], 0.5, [429, 503], 1.0, 2)),
    judged(cc.served_after, lambda pair: cc.served_after(pair[0], pair[1], 1)),
    judged(cc.served_after, lambda pair: cc.served_after(pair[0], pair[1], 1, 4, 2.4)),   # after retried tries
    # arrivals counted and timed from the harness's own journal, not the gateway's bytes: a status
    # number stands in for a count
    judged(cc.not_forwarded, lambda pair: cc.not_forwarded(abs(pair[0] or 0) % 5)),
    judged(sr.attempts, lambda pair: sr.attempts([0.5, 0.5 + abs(pair[0] or 0) % 7], 2.0, 1.0, 1, pair[1] is None)),
    judged(sr.after_answer, lambda pair: sr.after_answer([0.5, 0.5 + abs(pair[0] or 0) % 7], 2.0)),
]


def judge_all(table, x: Any) -> None:
    for fn, call, returns in table:
        try:
            r = call(x)
        except Exception as exc:
            raise AssertionError(f"{fn.__module__}.{fn.__name__} raised {exc!r}") from exc
        assert returns(r), f"{fn.__module__}.{fn.__name__} returned {r!r}"


def _public_functions() -> set[Callable]:
    found = set()
    for info in pkgutil.iter_modules(harness.oracles.__path__):
        mod = importlib.import_module(f"harness.oracles.{info.name}")
        found |= {fn for name, fn in inspect.getmembers(mod, inspect.isfunction)
                  if fn.__module__ == mod.__name__ and not name.startswith("_")}
    return found


def test_every_public_oracle_function_is_listed():
    listed = {fn for table in (PAYLOAD, EVENTS, STREAM, HEADERS, STATUS, METRICS_TEXT) for fn, _, _ in table}
    missing = sorted(f"{fn.__module__}.{fn.__name__}" for fn in _public_functions() - listed)
    assert not missing, f"add these to a table in {__name__} (with the input they judge): {missing}"


# --- garbage -----------------------------------------------------------------------------------

# Field names and values the oracles look for, so the garbage reaches the branches behind them.
KEYS = ["id", "object", "created", "model", "choices", "index", "message", "role", "content", "refusal",
        "tool_calls", "finish_reason", "usage", "prompt_tokens", "completion_tokens", "total_tokens",
        "input_tokens", "output_tokens", "type", "text", "function", "name", "arguments", "stop_reason",
        "output", "status", "data", "error", "delta", "sequence_number", "response"]
WORDS = ["text", "message", "assistant", "function", "tool_use", "output_text", "chat.completion",
         "chat.completion.chunk", "list", "model", "response", "completed", "message_start", "message_delta",
         "message_stop", "content_block_start", "content_block_delta", "content_block_stop", "text_delta",
         "response.created", "response.output_text.delta", "response.completed", "stop", "end_turn",
         "tool_calls", "chatcmpl-x", "resp_x", "[DONE]", '{"a": 1}', "{", LONG_INT, TOO_DEEP]
# What json.loads can hand an oracle and st.text/st.integers seldom draw: a lone surrogate (from a
# \ud800 escape), integers too large for a float, NaN and infinities.
NASTY = st.sampled_from(["", "\ud800", 10**400, -10**400, 2**63, float("nan"), float("inf"), -0.0])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                    st.sampled_from(WORDS), NASTY)
json_values = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=6), kids, max_size=4)), max_leaves=20)
keyed_values = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(KEYS), kids, max_size=6)), max_leaves=15)
# The right top-level keys, wrong types inside: choices a string, usage a list, blocks of ints...
keyed_dicts = st.dictionaries(st.sampled_from(KEYS), keyed_values, min_size=1, max_size=8)

CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": "gpt-mock",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "text", "text": "hi"}],
           "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 2}}
RESPONSE = {"id": "resp_1", "object": "response", "status": "completed",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "hi"}]}],
            "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}}
MODELS = {"object": "list", "data": [{"id": "gpt-mock", "object": "model"}, {"id": "a", "object": "model"}]}
ERROR = {"error": {"message": "bad", "type": "invalid_request_error"}}

DONE = "[DONE]"


def _chunk(delta: dict, fr: Any = None, **extra: Any) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": fr}], **extra}


OPENAI_STREAM = [_chunk({"role": "assistant", "content": ""}), _chunk({"content": "hi"}),
                 _chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{"}}]}),
                 _chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}), _chunk({}, "stop"),
                 {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
                  "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}, DONE]
ANTHROPIC_STREAM = [{"type": "message_start", "message": MESSAGE}, {"type": "content_block_start", "index": 0},
                    {"type": "ping"}, {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}},
                    {"type": "content_block_stop", "index": 0},
                    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
                    {"type": "message_stop"}]
RESPONSES_STREAM = [{"type": "response.created", "sequence_number": 0},
                    {"type": "response.output_text.delta", "delta": "hi", "sequence_number": 1},
                    {"type": "response.completed", "response": RESPONSE, "sequence_number": 2}]
PAYLOADS = {"chat": CHAT, "message": MESSAGE, "response": RESPONSE, "models": MODELS, "error": ERROR}
STREAMS = {"openai": (OPENAI_STREAM, False), "anthropic": (ANTHROPIC_STREAM, True),   # (events, event: lines)
           "responses": (RESPONSES_STREAM, True)}


def paths(node: Any, at: tuple = ()) -> list[tuple]:
    """Every place in a JSON value, the root included."""
    kids = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    return [at] + [p for k, v in kids for p in paths(v, at + (k,))]


def put(obj: Any, path: tuple, value: Any = None, drop: bool = False) -> Any:
    """A copy of obj with the value at path replaced (or its key dropped)."""
    if not path:
        return value
    obj = copy.deepcopy(obj)
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return obj


def at(obj: Any, path: tuple) -> Any:
    for k in path:
        obj = obj[k]
    return obj


@st.composite
def mutated(draw, samples: list) -> Any:
    """A valid sample, broken in one to three places: garbage put in, a key dropped, a tail cut."""
    obj = draw(st.sampled_from(samples))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(obj)))
        how = draw(st.sampled_from(["replace", "drop", "truncate"]))
        old = at(obj, path)
        if how == "drop" and path:
            obj = put(obj, path, drop=True)
        elif how == "truncate" and isinstance(old, (list, dict, str)) and old:
            n = draw(st.integers(0, len(old) - 1))
            obj = put(obj, path, dict(list(old.items())[:n]) if isinstance(old, dict) else old[:n])
        else:
            obj = put(obj, path, draw(keyed_values))
    return obj


def _data(v: Any) -> str:
    return DONE if v == DONE else json.dumps(v)


def to_events(values: Any, lines: bool) -> list[SSEEvent]:
    """SSE events carrying values as data; with lines, an `event:` line naming each one's type."""
    values = values if isinstance(values, list) else [values]   # a mutation may replace the list itself
    types = [co.get(v, "type") for v in values]
    return [SSEEvent(_data(v), t if lines and isinstance(t, str) else None) for v, t in zip(values, types)]


@st.composite
def sse_events(draw, values) -> list[SSEEvent]:
    """Events whose data is drawn from values; event lines right, absent or garbage; data sometimes cut."""
    lines = draw(st.sampled_from(["type", "none", "garbage"]))
    events = to_events(draw(values), lines == "type")
    for ev in events:
        ev.event = draw(st.text(max_size=8)) if lines == "garbage" else ev.event
    if events and draw(st.booleans()):
        ev = events[draw(st.integers(0, len(events) - 1))]
        ev.data = ev.data[:draw(st.integers(0, len(ev.data)))]   # a cut stream: truncated JSON
    return events


@st.composite
def typed_dicts(draw) -> dict:
    """An event payload of a known type (so it passes the oracles' type guards), wrong inside."""
    return {**draw(keyed_dicts), "type": draw(st.sampled_from(WORDS))}


garbage_streams = st.lists(st.one_of(typed_dicts(), keyed_dicts, keyed_values, st.just(DONE)), min_size=1, max_size=6)
# Valid streams broken: events dropped or garbled, the tail cut (no [DONE], no message_stop), reordered.
broken_streams = st.one_of(mutated([values for values, _ in STREAMS.values()]),
                           st.lists(st.sampled_from(OPENAI_STREAM + ANTHROPIC_STREAM + RESPONSES_STREAM), max_size=8))

# Each wrong type a field can have, in JSON: scalars where containers belong and the reverse.
WRONG = [None, True, 0, -1, 1.5, float("nan"), 10**400, "", "x", "\ud800", TOO_DEEP, LONG_INT, [], [1], ["x"], [None],
         {}, {"x": 1}, {"type": "text"}]

SSE_BITS = [b"data: ", b"event: ", b"id: ", b": ping", b"\n", b"\r\n", b"\r", b"\n\n", b"data: [DONE]\n\n",
            b'data: {"type": "', b'data: {"choices": [', b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\x00"]


@st.composite
def events_from_bytes(draw) -> list[SSEEvent]:
    """Raw bytes (invalid UTF-8 included) cut into events by our parser, as a live stream is."""
    blob = b"".join(draw(st.lists(st.one_of(st.sampled_from(SSE_BITS), st.binary(max_size=12)), max_size=20)))
    return SSEParser().feed(blob + b"\n\n")


# --- the tests ---------------------------------------------------------------------------------

@GARBAGE
@given(json_values)
def test_payload_oracles_survive_arbitrary_json(obj):
    judge_all(PAYLOAD, obj)


@GARBAGE
@given(keyed_dicts)
def test_payload_oracles_survive_right_keys_wrong_types(obj):
    judge_all(PAYLOAD, obj)


@GARBAGE
@given(mutated(list(PAYLOADS.values())))
def test_payload_oracles_survive_mutated_valid_payloads(obj):
    judge_all(PAYLOAD, obj)


def judge_stream(events: list[SSEEvent]) -> None:
    judge_all(EVENTS, events)
    judge_all(STREAM, os_.parse(events))


@GARBAGE
@given(sse_events(garbage_streams))
@example([SSEEvent(TOO_DEEP)])   # raw data, not a JSON string holding it as the other garbage does
def test_stream_oracles_survive_garbage_events(events):
    judge_stream(events)


@GARBAGE
@given(sse_events(broken_streams))
def test_stream_oracles_survive_broken_valid_streams(events):
    judge_stream(events)


@GARBAGE
@given(events_from_bytes())
def test_stream_oracles_survive_raw_bytes(events):
    judge_stream(events)


def test_payload_oracles_survive_every_field_retyped():
    """Not left to chance: every field of every valid payload, given every wrong type in turn."""
    for name, sample in PAYLOADS.items():
        for path in paths(sample):
            for value in WRONG:
                try:
                    judge_all(PAYLOAD, put(sample, path, value))
                except AssertionError as exc:
                    raise AssertionError(f"{name} with {path} = {co.short(value)}: {exc}") from exc


def test_stream_oracles_survive_every_field_retyped():
    for name, (values, lines) in STREAMS.items():
        for path in paths(values)[1:]:
            for value in WRONG:
                try:
                    judge_stream(to_events(put(values, path, value), lines))
                except AssertionError as exc:
                    raise AssertionError(f"{name} with {path} = {co.short(value)}: {exc}") from exc


@GARBAGE
@given(st.text(), st.one_of(st.none(), st.integers()), st.one_of(st.none(), st.text()))
def test_header_and_status_oracles_survive_anything(content_type, status, error):
    judge_all(HEADERS, content_type)
    judge_all(STATUS, (status, error))


def test_valid_samples_pass_so_the_garbage_is_near_miss():
    """The seeds are conforming; otherwise 'mutated valid payloads' would be just more garbage."""
    assert oc.full_shape(CHAT) == [] and oc.tool_calls_shape(CHAT, ["f"]) == []
    assert ao.message_shape(MESSAGE) == [] and ro.response_shape(RESPONSE) == []
    assert mo.list_shape(MODELS) == [] and eo.openai_error_object(ERROR) == []
    s = os_.parse(to_events(*STREAMS["openai"]))
    assert os_.well_formed(s) + os_.ends_with_done(s) + os_.usage_once_final(s) + os_.tool_call_deltas(s) == []
    anthropic = to_events(*STREAMS["anthropic"])
    assert ao.event_order(anthropic) + ao.event_lines_match(anthropic) + ao.message_delta_usage(anthropic) == []
    assert ro.stream_events(to_events(*STREAMS["responses"])) == []


def test_a_body_nested_too_deep_for_the_parser_is_not_json_to_the_client():
    """Before any oracle sees it: the client's own parse of a hostile body never raises."""
    from harness.client.http import Exchange
    ex = Exchange("POST", "/v1/chat/completions", None)
    ex.body = b"[" * 100_000 + b"]" * 100_000
    assert ex.json() is None


# Lines a metrics route writes, and broken ones: what the metrics oracles read is garbage of that kind.
PROM_LINES = ['# HELP x_total n', '# TYPE x_total counter', 'x_total{model="m"} 1', 'x_total{model="m",s="5"} NaN',
              'x_sum{model="m"} +Inf', 'x_count{model="m"} -1', 'x_count{model="m"} 1e400', 'x_total{model="m} 1',
              'x_total{model="m"}', '{', 'x_sum{model="m"} 0x10', '# EOF', 'x_total{model="m",model="n"} 2']


@GARBAGE
@given(st.one_of(st.text(max_size=200),
                 st.lists(st.one_of(st.sampled_from(PROM_LINES), st.text(max_size=30)), max_size=8).map("\n".join)))
def test_metrics_oracles_never_raise_on_garbage_text(text):
    judge_all(METRICS_TEXT, text)
