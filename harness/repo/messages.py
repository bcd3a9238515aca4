"""Failure and skip messages: the line worth showing, and the form under which two failures are
the same root cause (report 004 groups 8 failures under one "HTTP 400 Bad Request")."""
from __future__ import annotations

import re

# Lines a runner writes around a test's own words (Go's verbose markers and `# pkg` build headers,
# pytest's section rules).
_NOISE = re.compile(r"^(=== (RUN|PAUSE|CONT|NAME)\b|--- (FAIL|PASS|SKIP)\b|_{3,}|FAIL$|PASS$|ok\s|# )")
_GO_PLACE = re.compile(r"^\s*[\w.-]+\.go:\d+: ")        # "    router_test.go:12: " before a t.Errorf text
# Parts that differ between two runs of one cause: addresses, ids, times, temp paths, ports, line numbers.
_VARYING = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\b[0-9a-f]{16,}\b"), "<hex>"),
    (re.compile(r"/tmp/[^\s'\":]+"), "<tmp>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s|µs|us|ns)\b"), "<time>"),
    (re.compile(r"(127\.0\.0\.1|localhost|\[::1\]):\d+"), r"\1:<port>"),
    (re.compile(r"(\.\w+):\d+\b"), r"\1:<line>"),
)
GENERIC = {"", "failed", "failure", "error", "skipped"}   # messages that say nothing (gotestsum: "Failed")


def first_line(text: str) -> str:
    """The first line that is the test's own words, without Go's file:line prefix."""
    for raw in (text or "").splitlines():
        line = raw.strip()
        if line and not _NOISE.match(line):
            return _GO_PLACE.sub("", raw).strip()
    return ""


def pick(message: str, text: str) -> str:
    """A runner's message attribute (its first own line: gotestsum puts the whole output there),
    unless it says nothing; then the text's first line."""
    message = (message or "").strip()
    if message.lower() in GENERIC:
        return first_line(text) or message
    return first_line(message) or message.splitlines()[0].strip()


def normalise(message: str) -> str:
    """The root-cause key: the first line, with what varies between runs of one cause replaced."""
    line = first_line(message)
    for pattern, repl in _VARYING:
        line = pattern.sub(repl, line)
    return re.sub(r"\s+", " ", line).strip()
