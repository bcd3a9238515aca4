"""A Python gateway the harness starts, measured by coverage.py while the lanes drive it: the
command wrapped in `coverage run`, a context per lane and per claim (harness/coverage_contexts.py
switches them inside the gateway), and afterwards the gateway's source matrix: per module its
statements, missed lines, cover, and the lanes and claims that reached it."""
from __future__ import annotations

import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional

from harness.world.processes import StartError

RCFILE = ".coveragerc"
STARTUP = "start-up"
CONTEXT_FILE = "context"


def prepare(where: Path, source: list[str], omit: list[str]) -> Path:
    """The rcfile for the gateway's coverage run, in `where` (its data goes there too)."""
    where.mkdir(parents=True, exist_ok=True)
    rc = where / RCFILE
    lines = ["[run]", f"data_file = {where / '.coverage'}", "parallel = true", "sigterm = true",
             "core = ctrace",   # switch_context needs a tracer with dynamic contexts (not sys.monitoring)
             "plugins = harness.coverage_contexts", f"source_pkgs = {', '.join(source)}"]
    if omit:
        lines.append(f"omit = {', '.join(omit)}")
    lines += ["", "[harness.coverage_contexts]", f"context_file = {where / CONTEXT_FILE}", ""]
    rc.write_text("\n".join(lines))
    return rc


def wrap(argv: list[str], rcfile: Path) -> list[str]:
    """`coverage run` around a Python gateway's command: a console script (a python shebang), a
    script, or `python -m module`. Anything else cannot be measured by coverage.py."""
    run = [sys.executable, "-m", "coverage", "run", f"--rcfile={rcfile}"]
    first = Path(argv[0])
    if "python" in first.name and len(argv) > 2 and argv[1] == "-m":
        return [*run, "-m", *argv[2:]]
    if "python" in first.name and len(argv) > 1:
        return [*run, *argv[1:]]
    try:
        with open(first, "rb") as f:
            shebang = f.readline(200)
    except OSError as exc:
        raise StartError(f"target.coverage: cannot read {argv[0]}: {exc.strerror}") from None
    if shebang.startswith(b"#!") and b"python" in shebang:
        return [*run, *argv]
    raise StartError(f"target.coverage: {argv[0]} is not a Python program; coverage.py measures Python gateways only")


def switch(where: Optional[str], pid: Optional[int], label: str, timeout_s: float = 2.0) -> bool:
    """Starts context `label` in the gateway; True once the gateway acknowledged it."""
    if not where or not pid:
        return False
    ctx, ack = Path(where) / CONTEXT_FILE, Path(where) / (CONTEXT_FILE + ".ack")
    ctx.write_text(label)
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ack.read_text() == label:
                return True
        except OSError:
            pass
        time.sleep(0.01)
    return False


def matrix(where: Path, lane_of: dict[str, str], limit: int = 400) -> Optional[dict[str, Any]]:
    """The gateway's source matrix from the data its coverage run left in `where`."""
    import coverage
    from coverage.exceptions import CoverageException
    if not list(where.glob(".coverage*")):
        return None
    cov = coverage.Coverage(data_file=str(where / ".coverage"), config_file=str(where / RCFILE))
    try:
        cov.combine(data_paths=[str(where)], keep=True, strict=False)
    except CoverageException:
        pass
    cov.load()
    data = cov.get_data()
    rows, by_claim = [], defaultdict(set)
    total_s = total_m = 0
    for path in sorted(data.measured_files()):
        try:
            _, statements, _, missing, _ = cov.analysis2(path)
        except (CoverageException, OSError, SyntaxError):
            continue
        if not statements:
            continue
        contexts: set[str] = set()
        for labels in (data.contexts_by_lineno(path) or {}).values():
            contexts.update(labels)
        module = _module(path)
        claims = sorted(c for c in contexts if c and not c.startswith("lane:"))
        # "" is before the first switch: the gateway's start-up (imports, config, readiness probes).
        lanes = sorted({STARTUP if not c else lane_of.get(c, c[5:] if c.startswith("lane:") else "?") for c in contexts})
        for c in claims:
            by_claim[c].add(module)
        s, m = len(statements), len(missing)
        total_s, total_m = total_s + s, total_m + m
        rows.append({"module": module, "statements": s, "missed": m, "cover": round(100 * (s - m) / s, 1),
                     "lanes": lanes, "claims": claims})
    rows.sort(key=lambda r: (-(r["statements"] - r["missed"]), r["module"]))
    reached_by: dict[str, int] = defaultdict(int)
    for ms in by_claim.values():
        for m_ in ms:
            reached_by[m_] += 1
    unique = {c: sorted(m_ for m_ in ms if reached_by[m_] == 1) for c, ms in by_claim.items()}
    return {"modules": rows[:limit], "modules_reached": len(rows), "shown": min(limit, len(rows)),
            "only": {c: ms for c, ms in sorted(unique.items()) if ms},
            "total": {"statements": total_s, "missed": total_m,
                      "cover": round(100 * (total_s - total_m) / total_s, 1) if total_s else 0.0},
            "claims": {c: sorted(ms) for c, ms in sorted(by_claim.items())},
            "contexts": sorted(c for c in data.measured_contexts() if c)}


def _module(path: str) -> str:
    """A measured file as its import path inside site-packages (or the path itself)."""
    parts = Path(path).parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1:])
    return path
