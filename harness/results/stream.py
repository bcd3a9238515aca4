"""results.jsonl: one JSON object per line, appended and flushed (and fsynced) the moment it is
known, so a run killed halfway loses no verdict it had reached.

Lines, in order:
  {"type": "run", ...}          who ran what, against which gateway (provenance), and the catalog
  {"type": "record", ...}       one verdict (results.record.Record)
  {"type": "artifact", ...}     a lane's tables and figures the report shows (load percentiles, smoke grid)
  {"type": "end", ...}          the run finished (no such line: the run was cut short: a partial report)

Everything else (terminal, results.json, junit.xml, report.md/html) reads this file or listens to
the writer: data flows one way.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from harness.results.record import Record, natural_key

Listener = Callable[[str, dict[str, Any]], None]


class StreamWriter:
    """Appends lines to results.jsonl. Thread-safe: the smoke lane judges cells from a pool."""

    def __init__(self, path: Path, redact: Callable[[Any], Any] = lambda d: d) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._redact = redact
        self._lock = threading.Lock()
        self._file = open(path, "w", encoding="utf-8")
        self._listeners: list[Listener] = []
        self.records: list[Record] = []

    def listen(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def _write(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        line = self._redact({"type": kind, **payload})
        with self._lock:
            if self._file.closed:
                return line
            self._file.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        for fn in self._listeners:
            fn(kind, line)
        return line

    def start(self, run: dict[str, Any]) -> None:
        self._write("run", {"started_at": time.time(), **run})

    def record(self, rec: Record) -> None:
        rec.status = type(rec.status)(rec.status)
        line = self._write("record", rec.to_json())
        self.records.append(Record.from_json(line))

    def artifact(self, lane: str, name: str, data: Any) -> None:
        self._write("artifact", {"lane": lane, "name": name, "data": data})

    def lane(self, lane: str, event: str, **info: Any) -> None:
        """A lane started or ended (for the progress display; planned counts in `info`)."""
        self._write("lane", {"lane": lane, "event": event, **info})

    def end(self, **info: Any) -> None:
        self._write("end", {"finished_at": time.time(), **info})

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()


@dataclass
class Run:
    """A results.jsonl read back: complete or partial (no end line: interrupted or killed)."""
    meta: dict[str, Any]
    records: list[Record]
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    end: Optional[dict[str, Any]] = None

    @property
    def partial(self) -> bool:
        return self.end is None or bool(self.end.get("interrupted") or self.end.get("infra_error"))

    def artifacts_of(self, lane: str) -> list[dict[str, Any]]:
        return [a for a in self.artifacts if a["lane"] == lane]

    def by_id(self) -> dict[str, Record]:
        return {r.id: r for r in self.records}


def read(path: Path) -> Run:
    """Every complete line; a torn last line (the process died mid-write) is ignored."""
    meta: dict[str, Any] = {}
    records: dict[str, Record] = {}
    artifacts: list[dict[str, Any]] = []
    end = None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            if not raw.endswith("\n"):
                break      # torn: written up to here when the process died
            try:
                line = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not a results line: {exc.msg}") from None
            kind = line.pop("type", None)
            if kind == "run":
                meta.update(line)   # later run lines add what was learnt after the start (the gateway's version)
            elif kind == "record":
                rec = Record.from_json(line)
                records[rec.id] = rec          # a later verdict for the same id replaces an earlier one
            elif kind == "artifact":
                artifacts.append(line)
            elif kind == "end":
                end = line
    return Run(meta, sorted(records.values(), key=lambda r: natural_key(r.id)), artifacts, end)
