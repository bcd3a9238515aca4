"""Which files of a repository are its tests: one walk, skipping what is never the team's own
(virtualenvs, vendored code, build output, VCS data)."""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Iterator

SKIP_DIRS = {".git", ".hg", ".venv", "venv", "env", "node_modules", "vendor", "testdata", "__pycache__",
             "site-packages", "build", "dist", ".tox", ".nox", ".mypy_cache", ".pytest_cache"}
PY_TESTS = ("test_*.py", "*_test.py")      # pytest's default python_files
GO_TESTS = ("*_test.go",)


def walk(repo: Path, patterns: tuple[str, ...]) -> Iterator[str]:
    """Paths relative to `repo` (posix), sorted, of files matching any of `patterns`."""
    found = []
    for top, dirs, names in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        for name in names:
            if any(fnmatch.fnmatch(name, p) for p in patterns):
                found.append(Path(top, name).relative_to(repo).as_posix())
    yield from sorted(found)


def test_file_stem(path: str) -> str:
    """The module a test file is named for: test_foo.py, foo_test.py, foo_test.go -> foo."""
    stem = Path(path).stem
    if stem.startswith("test_"):
        return stem[5:]
    return stem[:-5] if stem.endswith("_test") else ""
