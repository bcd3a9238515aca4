"""Results streams for the report tests: records (and artifacts) written through the real
StreamWriter, read back with the real reader, so the tests see what `harness report --from` sees."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Optional

from harness.results.record import Record
from harness.results.stream import Run, StreamWriter, read


def rec(cid: str, status: str, section: str = "10.1 Chat", risk: str = "conformance", wave: str = "P1",
        check: Optional[str] = "x.y", reason: str = "why", lane: str = "Conformance", **more: Any) -> Record:
    return Record(cid, lane, section, status, reason, claim=f"claim {cid}",
                  test=f"test_{cid.replace('-', '_').replace('.', '_').lower()}", risk=risk, wave=wave, check=check,
                  evidence=more.pop("evidence", {"k": "v"}), duration_s=0.1, **more)


def catalog_row(r: Record) -> dict[str, Any]:
    return {k: v for k, v in r.to_json().items() if k not in ("status", "reason", "evidence")}


def write_run(path: Path, records: Iterable[Record], *, catalog: Optional[list[dict[str, Any]]] = None,
              artifacts: Iterable[tuple[str, str, Any]] = (), meta: Optional[dict[str, Any]] = None,
              finished: bool = True, started_at: float = 1_000_000.0) -> Path:
    records = list(records)
    w = StreamWriter(path)
    w.start({"harness_version": "0.1.0", "started_at": started_at, "target": {"name": "gw", "config": "h.yaml"},
             "gateway": {"name": "gw", "version": "1.0", "source": "test"}, "catalog_digest": "abc",
             "catalog": catalog if catalog is not None else [catalog_row(r) for r in records],
             "planned": {"claims": [r.id for r in records]}, "providers": [{"name": "p", "kind": "openai", "mock": True}],
             "promises": {}, "release": {"blocking_waves": ["P0", "P1"]}, **(meta or {})})
    for r in records:
        w.record(r)
    for lane, name, data in artifacts:
        w.artifact(lane, name, data)
    if finished:
        w.end(interrupted=False)
    w.close()
    return path


def run_of(path: Path, records: Iterable[Record], **kw: Any) -> Run:
    return read(write_run(path, records, **kw))
