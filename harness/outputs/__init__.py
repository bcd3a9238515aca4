"""Every output of a run, built from its results stream (results.jsonl) and nothing else:
results.json, junit.xml, report.md, report.html; and the run kept in the history.

`harness run` calls `write_all` when its lanes are done (or broke, or were interrupted);
`harness report --from results.jsonl` calls the same function later."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from harness.outputs import history as hist
from harness.outputs import junit, results_json
from harness.report import render
from harness.report.view import build
from harness.results.stream import Run


def gateway_log(logs: Path) -> Optional[Path]:
    path = logs / "gateway.log"
    return path if path.exists() else None


def write_all(run: Run, out: Path, history: Optional[Path], stream_path: Optional[Path] = None,
              logs: Optional[Path] = None) -> dict[str, Any]:
    """`stream_path`: keep this run in `history`; `logs`: where the run's logs are (default out/logs:
    a report rebuilt elsewhere still finds the gateway's log lines behind each cause)."""
    out.mkdir(parents=True, exist_ok=True)
    target = run.meta.get("target", {}).get("name", "")
    before = hist.previous_runs(history, target) if history else []
    changes = hist.changes(run, before)
    view = build(run, gateway_log(logs or out / "logs"), changes, hist.trend(run, before))
    results_json.write(view, run.artifacts, out / "results.json")
    junit.write(view["rows"], out / "junit.xml")
    render.write(view, out)
    if history and stream_path:
        hist.save(history, run, stream_path)
    return view
