"""The source-to-test matrix of a Go module, from a `go test -coverprofile` file: a row per package
(statements, missed, cover, tier) and per file. Go measures a package by the tests run against it
but has no per-test data, so a package's test files are those in its directory (attribution by
package, valid for the default run without -coverpkg), and the over-mocking finding is a package
whose own tests execute none of its statements."""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Optional

from harness.config import ConfigError
from harness.repo.matrix import Finding, ModuleRow, SourceMatrix

_BLOCK = re.compile(r"^(.+):(\d+)\.(\d+),(\d+)\.(\d+) (\d+) (\d+)$")


def read_profile(path: Path) -> dict[str, dict[tuple[int, int, int, int], tuple[int, int]]]:
    """file (import path) -> block -> (statements, count). A block listed twice (profiles merged, or
    one package measured by several test binaries) counts once, covered if any listing covered it."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such coverage profile") from None
    if not lines or not lines[0].startswith("mode: "):
        raise ConfigError(f"{path}:1: not a Go coverage profile (no 'mode:' line)")
    files: dict[str, dict[tuple[int, int, int, int], tuple[int, int]]] = {}
    for n, line in enumerate(lines[1:], 2):
        if not line.strip() or line.startswith("mode: "):
            continue
        m = _BLOCK.match(line.strip())
        if not m:
            raise ConfigError(f"{path}:{n}: not a coverage block (file:line.col,line.col statements count): {line!r}")
        block = tuple(int(m.group(i)) for i in range(2, 6))
        stmts, count = int(m.group(6)), int(m.group(7))
        blocks = files.setdefault(m.group(1), {})
        old = blocks.get(block, (stmts, 0))
        blocks[block] = (stmts, max(old[1], count))
    return files


def go_matrix(profile: Path, test_files: Optional[dict[str, list[str]]] = None, by: str = "package") -> SourceMatrix:
    """`test_files`: package import path -> its _test.go files (static_go / inventory). `by`:
    "package" rows, or "file" rows (the over-mocking finding is per package either way)."""
    files = read_profile(profile)
    tests = test_files or {}
    per_file = {f: (sum(s for s, _ in b.values()), sum(s for s, c in b.values() if c == 0)) for f, b in files.items()}
    per_pkg: dict[str, list[int]] = {}
    for f, (stmts, missed) in per_file.items():
        acc = per_pkg.setdefault(str(PurePosixPath(f).parent), [0, 0])
        acc[0] += stmts
        acc[1] += missed
    if by == "file":
        rows = [ModuleRow(f, s, m, tests.get(str(PurePosixPath(f).parent), [])) for f, (s, m) in sorted(per_file.items())]
    else:
        rows = [ModuleRow(p, s, m, tests.get(p, [])) for p, (s, m) in sorted(per_pkg.items())]
    findings = [Finding(", ".join(tests[p]), p, f"the package's tests ({', '.join(tests[p])}) execute none of its "
                        f"{s} statements: mocked away, or testing something else")
                for p, (s, m) in sorted(per_pkg.items()) if s and m == s and tests.get(p)]
    return SourceMatrix("go", rows, False, findings)
