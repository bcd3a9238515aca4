"""The SSE parser gives the same events however the bytes are split (a 1-byte slicer included)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.client.sse import SSEParser

event_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)
events = st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["message_start", "ping", "x"])), event_text),
                  min_size=1, max_size=8)
newlines = st.sampled_from(["\n", "\r\n", "\r"])


def encode(evs, nl: str) -> bytes:
    out = ""
    for name, data in evs:
        out += (f"event: {name}{nl}" if name else "") + f"data: {data}{nl}{nl}"
    return out.encode()


@settings(max_examples=200, deadline=None)
@given(evs=events, nl=newlines, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10))
def test_any_split_gives_the_same_events(evs, nl, cuts):
    raw = encode(evs, nl)
    whole = [(e.event, e.data) for e in SSEParser().feed(raw)]
    assert whole == [(name, data) for name, data in evs]
    parser, got, prev = SSEParser(), [], 0
    for c in sorted({min(c, len(raw)) for c in cuts}) + [len(raw)]:
        got += [(e.event, e.data) for e in parser.feed(raw[prev:c])]
        prev = c
    assert got == whole


def test_one_byte_reads():
    raw = b"event: a\r\ndata: {\"x\":1}\r\n\r\ndata: [DONE]\r\n\r\n"
    parser, got = SSEParser(), []
    for i in range(len(raw)):
        got += parser.feed(raw[i:i + 1])
    assert [(e.event, e.data) for e in got] == [("a", '{"x":1}'), (None, "[DONE]")]


def test_comments_multiline_data_and_unterminated_tail():
    p = SSEParser()
    evs = p.feed(b": keepalive\ndata: a\ndata: b\n\ndata: partial")
    assert [(e.data, e.comments) for e in evs] == [("a\nb", ["keepalive"])]
    assert p.pending() == b"data: partial"
