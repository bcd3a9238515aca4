"""An incremental Server-Sent Events parser that keeps the raw bytes of each event.

Our own rather than a library's because checks need what libraries hide: whether an `event:` line
was present at all, the exact bytes as evidence, and events split across arbitrary TCP reads
(a 1-byte slicer must not change the result). Follows the WHATWG event-stream rules: lines end
in LF, CRLF or CR; a blank line dispatches; `:` starts a comment; one space after the colon is
dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class SSEEvent:
    data: str
    event: Optional[str] = None      # None when the event had no `event:` line
    id: Optional[str] = None
    raw: bytes = b""
    t: float = 0.0                   # when its last byte arrived (monotonic seconds)
    comments: list[str] = field(default_factory=list)


class SSEParser:
    def __init__(self) -> None:
        self._buf = b""
        self._raw = b""
        self._data: list[str] = []
        self._event: Optional[str] = None
        self._id: Optional[str] = None
        self._comments: list[str] = []
        self._pending_cr = False

    def feed(self, chunk: bytes, t: float = 0.0) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]   # the LF of a CRLF split across two reads
            self._raw += b"\n"
        self._pending_cr = False
        self._buf += chunk
        while True:
            idx = _line_end(self._buf)
            if idx is None:
                break
            end, sep_len = idx
            line, sep = self._buf[:end], self._buf[end:end + sep_len]
            if sep == b"\r" and end + 1 == len(self._buf):
                self._pending_cr = True   # might be the first half of CRLF
            self._buf = self._buf[end + sep_len:]
            self._raw += line + sep
            ev = self._line(line.decode("utf-8", "replace"), t)
            if ev:
                out.append(ev)
        return out

    def pending(self) -> bytes:
        """Bytes of an event that never got its terminating blank line (a cut stream)."""
        return self._raw + self._buf

    def _line(self, line: str, t: float) -> Optional[SSEEvent]:
        if line == "":
            if not self._data and self._event is None:
                self._raw = b""
                return None
            ev = SSEEvent("\n".join(self._data), self._event, self._id, self._raw, t, self._comments)
            self._data, self._event, self._raw, self._comments = [], None, b"", []
            return ev
        if line.startswith(":"):
            self._comments.append(line[1:].lstrip(" "))
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


def _line_end(buf: bytes) -> Optional[tuple[int, int]]:
    n, r = buf.find(b"\n"), buf.find(b"\r")
    if r == -1 and n == -1:
        return None
    if r != -1 and (n == -1 or r < n):
        return (r, 2) if buf[r + 1:r + 2] == b"\n" else (r, 1)
    return n, 1
