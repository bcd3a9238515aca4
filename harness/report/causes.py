"""Findings grouped by root cause, so one broken thing is one entry with its claims under it.

Two findings share a cause when they share a signature:
- the gateway's own log explains them alike: log lines that carry the error text the client got
  (or, for a bare "Internal Server Error", the error lines written while the check ran) come from
  the same place once numbers, ids and quoted values are stripped;
- or checks of one family (openai_stream.*) gave the same reason once numbers and ids are stripped
  (a gateway that fails every stream gives one cause, not one finding per streaming claim).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Optional

from harness.results.record import Record

_TS = re.compile(r"^\S*\d{4}-\d\d-\d\d[T ][\d:.,]+\S*\s*|^\d\d:\d\d:\d\d[\d.,]*\s*")
_VOLATILE = re.compile(r"'[^']*'|\"[^\"]*\"|\b[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|\b[0-9a-f]{8,}\b|\b\d+(\.\d+)?\b|\[h:[^\]]*\]|sk-\S+")
_ERRORISH = re.compile(r"(?i)\b(error|exception|traceback|failed|critical)\b")
_GENERIC = {"internal server error", "bad request", "error", "not found", "service unavailable"}
MAX_LINES = 6


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", _VOLATILE.sub("#", text)).strip()[:160]


def _bodies(evidence: Any) -> Iterable[str]:
    """Error texts the client got, from every exchange recorded in the evidence."""
    if isinstance(evidence, dict):
        if "status" in evidence and ("body" in evidence or "text" in evidence):
            body = evidence.get("body", evidence.get("text"))
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str) and body.strip():
                yield body
        for v in evidence.values():
            yield from _bodies(v)
    elif isinstance(evidence, list):
        for v in evidence:
            yield from _bodies(v)


def _messages(body: str) -> list[str]:
    """The human part of an error body: error.message / detail / the text itself."""
    try:
        obj = json.loads(body)
    except (ValueError, TypeError):
        return [body.strip()[:300]]
    out = []

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("message", "detail", "error") and isinstance(v, str):
                    out.append(v[:300])
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(obj)
    return out


class GatewayLog:
    """The gateway's log: its error headlines (lines that carry a time of day and say error,
    exception or failed), each with that time; lines without a time (tracebacks) are not headlines."""

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path
        self.lines: list[tuple[int, str]] = []
        self.heads: list[tuple[int, Optional[int], str]] = []    # (line number, second of the day, text)
        if path and path.exists():
            self.lines = list(enumerate(path.read_text(errors="replace").splitlines(), 1))
        for n, line in self.lines:
            m = _CLOCK.search(line[:40])
            if _ERRORISH.search(line):
                self.heads.append((n, int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) if m else None, line))

    def explaining(self, rec: Record) -> tuple[list[tuple[int, str]], bool]:
        """Log headlines that explain what the client got during this check, and whether they
        were found by the error text it got (specific) or only by time: when it got a bare
        'Internal Server Error', the headlines written while the check ran (to the second, with a
        second of slack either side; other checks running beside it may have written some)."""
        texts = {m.strip() for b in _bodies(rec.evidence) for m in _messages(b)}
        specific = {t for t in texts if len(t) >= 8 and t.lower() not in _GENERIC}
        window = _seconds(rec.started_at, rec.finished_at)
        out = []
        for n, sec, line in self.heads:
            in_window = window is not None and sec is not None and window[0] - 1 <= sec <= window[1] + 1
            if specific:
                if any(t[:80] in line for t in specific) and (sec is None or window is None or in_window):
                    out.append((n, line))
            elif texts and in_window:
                out.append((n, line))
        return out, bool(specific)


_CLOCK = re.compile(r"(?<!\d)(\d\d):(\d\d):(\d\d)(?!\d)")


def _seconds(start: Optional[float], end: Optional[float]) -> Optional[tuple[int, int]]:
    """A check's wall-clock window as seconds of the (local) day, as gateways log them."""
    if not start:
        return None
    import datetime as dt
    a, b = dt.datetime.fromtimestamp(start), dt.datetime.fromtimestamp(end or start)
    return a.hour * 3600 + a.minute * 60 + a.second, b.hour * 3600 + b.minute * 60 + b.second


def signature_of_line(line: str) -> str:
    """Where a log line comes from, without its time, level and final message: for
    'HH:MM:SS - Proxy:ERROR: file.py:207 - module.fn(): Exception occured - No api key' it is
    'module.fn(): Exception occured'."""
    text = _TS.sub("", line).lstrip("- ")
    parts = text.split(" - ")
    core = " - ".join(parts[1:-1]) if len(parts) >= 3 else parts[0]
    return normalise(core)


def group(findings: list[Record], log: GatewayLog) -> list[dict[str, Any]]:
    """Union of findings that share a signature; each group with its claims and its log lines.

    A log signature found by error text is an explanation. One found only by time (a bare 500) is
    weaker: checks running beside it write into the same second. It counts when a finding of the
    same section confirmed it by error text (a bare 500 in Auth is explained by the auth line another
    Auth finding's text named, not by a fallback error a routing check wrote that second); failing
    that, when it is the only one in the window. Else a busy second of the log would merge
    unrelated findings."""
    found = [log.explaining(r) for r in findings]
    confirmed: dict[str, set[str]] = {}     # section -> signatures its findings' error texts named
    for r, (lines, specific) in zip(findings, found):
        if specific:
            confirmed.setdefault(r.section, set()).update(signature_of_line(line) for _, line in lines)
    keys_of: list[set[str]] = []
    lines_of: list[list[tuple[int, str]]] = []
    for r, (lines, specific) in zip(findings, found):
        sigs = {signature_of_line(line) for _, line in lines}
        if not specific:
            own = sigs & confirmed.get(r.section, set())
            sigs = own if own else (sigs if len(sigs) == 1 else set())
        family = (r.check or r.lane).split(".")[0]   # openai_stream.shape and .content_type alike
        keys_of.append({f"log:{s}" for s in sigs} | {f"reason:{family}:{r.status}:{normalise(r.reason)}"})
        lines_of.append([(n, line) for n, line in lines if signature_of_line(line) in sigs])
    parent = list(range(len(findings)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, keys in enumerate(keys_of):
        for k in keys:
            if k in owner:
                parent[find(i)] = find(owner[k])
            else:
                owner[k] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(findings)):
        groups.setdefault(find(i), []).append(i)
    out = []
    for members in groups.values():
        recs = [findings[i] for i in members]
        shared = Counter(k[4:] for i in members for k in keys_of[i] if k.startswith("log:"))
        sigs = [s for s, _ in shared.most_common()]
        lines = sorted({ln for i in members for ln in lines_of[i] if signature_of_line(ln[1]) == (sigs[0] if sigs else None)})
        out.append({"records": recs, "log_lines": lines[:MAX_LINES], "log_signatures": sigs,
                    "title": _title(recs, sigs), "section": recs[0].section})
    return out


def _title(recs: list[Record], sigs: list[str]) -> str:
    if len(recs) == 1:   # the broken promise; the reason is in the finding's own row
        return f"{recs[0].id}: {recs[0].claim or recs[0].reason}"
    if sigs:
        return f"{recs[0].section}: {len(recs)} findings, one cause in the gateway's log: {sigs[0]}"
    return f"{len(recs)} findings with the same reason: {recs[0].reason}"
