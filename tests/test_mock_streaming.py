"""Made cheaper for 1,000 concurrent streams (benchmarks/load_generator.py), and the same: the mock's
content chunks from a template are the full encoding, byte for byte; a warm-up request's figures go
nowhere (and make no histogram)."""
from __future__ import annotations

import pytest

from harness.load.metrics import Discard
from harness.mocks.exchange import sse
from harness.mocks.openai_api import _content_chunks

TEXTS = ["", " alpha", "é", "日本語", '"quoted"', "back\\slash", "\n\r\t", "\x00", "\u2028", "😀", "a" * 300,
         "</script>"]


@pytest.mark.parametrize("model", ["gpt-mock", "é", "nul\x00inside", '"', ""])
@pytest.mark.parametrize("fingerprint", [None, "fp_mock"])
@pytest.mark.parametrize("include_usage", [False, True])
def test_content_chunks_are_the_full_encoding(model, fingerprint, include_usage):
    def chunk(delta, finish_reason=None):
        c = {"id": "chatcmpl-0123", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if fingerprint:
            c["system_fingerprint"] = fingerprint
        if include_usage:
            c["usage"] = None
        return sse(c)

    content_chunk = _content_chunks(chunk)
    for text in TEXTS:
        assert content_chunk(text) == chunk({"content": text}), (model, text)


def test_a_warmup_recorder_keeps_nothing():
    rec = Discard()
    rec.record("ttft", 0.5)
    rec.count("requests")
    rec.sample(0.5)
    rec.stamp("tag", 1, 2)
    assert rec.encode() == {"histograms": {}, "counts": {}, "samples": [], "stamps": []}
    assert rec.h == {}   # no histogram was made
