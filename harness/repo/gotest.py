"""Go's own reports: the `go test -json` event stream (test2json) and `go test -list` output.

Ids are `package.Test/Subtest` (example.com/gw/router.TestPick/cheapest); the category is the
package. A package that failed to build, or whose binary died before a test finished (a panic, a
-timeout), gives error results rather than silence."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from harness.config import ConfigError
from harness.repo import messages
from harness.repo.model import DETAILS_MAX, ERROR, FAILED, PASSED, SKIPPED, TestResult

_FINAL = {"pass": PASSED, "fail": FAILED, "skip": SKIPPED}
_NAME = re.compile(r"^(Test|Example|Benchmark|Fuzz)\w*$")
_PKG_LINE = re.compile(r"^(ok|FAIL|\?)\s+(\S+)")


@dataclass
class _Test:
    output: list[str] = field(default_factory=list)
    outcome: Optional[str] = None
    elapsed: float = 0.0


def read_go_json(source: Path | str, text: Optional[str] = None) -> list[TestResult]:
    """Results from a `go test -json` stream: the file at `source`, or `text` (then `source` only
    names it in errors)."""
    events = list(_events(source, Path(source).read_text() if text is None else text))
    tests: dict[tuple[str, str], _Test] = {}
    packages: dict[str, _Test] = {}
    for ev in events:
        # build events name "pkg [pkg.test]" in ImportPath; the test events name "pkg" in Package
        pkg = ev.get("Package") or (ev.get("ImportPath") or "").split(" [", 1)[0]
        name = ev.get("Test")
        action = ev["Action"]
        slot = tests.setdefault((pkg, name), _Test()) if name else packages.setdefault(pkg, _Test())
        if action in ("output", "build-output"):
            slot.output.append(ev.get("Output", ""))
        elif action in _FINAL:
            slot.outcome, slot.elapsed = _FINAL[action], float(ev.get("Elapsed") or 0.0)
        elif action == "build-fail":
            slot.outcome = ERROR
    results = [_result(pkg, name, t, tests) for (pkg, name), t in tests.items()]
    ran = {pkg for pkg, _ in tests}
    for pkg, p in packages.items():
        # A package that failed with no test of its own: it did not build, or its setup broke.
        if p.outcome in (FAILED, ERROR) and pkg not in ran:
            text = "".join(p.output)
            results.append(TestResult(id=pkg, name="", file="", category=pkg, outcome=ERROR,
                                      duration_s=p.elapsed, message=messages.first_line(text) or "package failed",
                                      details=text[:DETAILS_MAX]))
    return results


def _events(source: Path | str, text: str) -> Iterable[dict]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}:{n}: not a go test -json event: {exc.msg}") from None
        if not isinstance(ev, dict) or not isinstance(ev.get("Action"), str):
            raise ConfigError(f"{source}:{n}: Action: missing (not a go test -json event)")
        yield ev


def _result(pkg: str, name: str, t: _Test, tests: dict[tuple[str, str], _Test]) -> TestResult:
    text = "".join(t.output)
    outcome = t.outcome or ERROR          # started, never ended: the binary died (panic, -timeout)
    message = skip = ""
    if outcome == SKIPPED:
        skip = messages.first_line(text)
    elif outcome in (FAILED, ERROR):
        message = messages.first_line(text)
        if not message:                   # a parent that failed through its subtests
            failed = [n for (p, n), s in tests.items() if p == pkg and n.startswith(name + "/") and s.outcome == FAILED]
            message = f"subtest {failed[0]} failed" if failed else ""
        if t.outcome is None:
            message = message or "did not finish: the test binary exited (panic or timeout)"
    return TestResult(id=f"{pkg}.{name}", name=name, file="", category=pkg, outcome=outcome,
                      duration_s=t.elapsed, skip_reason=skip, message=message,
                      details=text[:DETAILS_MAX] if outcome in (FAILED, ERROR) else "")


def parse_go_list(text: str) -> dict[str, list[str]]:
    """package -> its test, example, benchmark and fuzz names, from `go test -list PATTERN ./...`
    (plain, or with -json). A package without test files is listed with none."""
    if text.lstrip().startswith("{"):
        lines = [(ev.get("Package", ""), ev.get("Output", "")) for ev in _events("go test -list -json", text)
                 if ev["Action"] == "output"]
    else:
        lines = [("", line + "\n") for line in text.splitlines()]
    out: dict[str, list[str]] = {}
    pending: list[str] = []
    for pkg, line in lines:
        line = line.strip()
        m = _PKG_LINE.match(line)
        if m and (m.group(1) != "?" or line.endswith("[no test files]")):
            out.setdefault(m.group(2), []).extend(pending)
            pending = []
        elif _NAME.match(line):
            (out.setdefault(pkg, []) if pkg else pending).append(line)
    return out
