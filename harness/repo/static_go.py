"""Go test files read statically: the Test/Benchmark/Example/Fuzz functions, their subtests named
by a literal (`t.Run("GO-1.1 cheapest wins", ...)`), build tags (`//go:build integration`), and
the claims named by `// claim: X-6.5.1` (above a test function or inside it)."""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Optional

from harness.repo.model import TestItem

_FUNC = re.compile(r"^func ((?:Test|Benchmark|Example|Fuzz)\w*)\(")
_CLAIM = re.compile(r"^\s*//\s*claim:\s*(.+)$", re.IGNORECASE)
_RUN = re.compile(r"\b\w+\.Run\(\s*\"((?:[^\"\\]|\\.)*)\"")
_BUILD = re.compile(r"^//go:build\s+(.+)$")


def scan_go(rel: str, text: str, package: str) -> list[TestItem]:
    """The tests of one _test.go file; `package` is its import path (see import_path)."""
    lines = text.splitlines()
    tags = sorted({w for line in lines[:20] if (m := _BUILD.match(line.strip()))
                   for w in re.findall(r"[A-Za-z_]\w*", m.group(1))})
    out: list[TestItem] = []
    current: Optional[TestItem] = None
    pending: list[str] = []                 # claims in the comment block above the next function
    for n, line in enumerate(lines, 1):
        m = _FUNC.match(line)
        if m and m.group(1) != "TestMain":
            current = TestItem(id=f"{package}.{m.group(1)}", file=rel, name=m.group(1), category=package,
                               marks=list(tags), claims=list(pending), line=n)
            out.append(current)
            pending = []
            continue
        claim = _CLAIM.match(line)
        if claim:
            ids = [c for c in re.split(r"[,\s]+", claim.group(1).strip()) if c]
            (current.claims if current else pending).extend(ids)
        elif line.startswith("}"):
            current = None                  # the end of a top-level declaration
        elif current is not None:
            for sub in _RUN.findall(line):  # go test reports a subtest with spaces as underscores
                name = f"{current.name}/{sub.replace(' ', '_')}"
                out.append(TestItem(id=f"{package}.{name}", file=rel, name=name, category=package,
                                    marks=list(tags), line=n))
        elif line.strip() and not line.lstrip().startswith("//"):
            pending = []                    # a claim comment belongs to the declaration right below it
    return out


def import_path(repo: Path, rel: str) -> str:
    """The import path of the package a file is in, from the nearest go.mod above it."""
    directory = (repo / rel).parent
    for parent in [directory, *directory.parents]:
        mod = parent / "go.mod"
        if mod.is_file():
            m = re.search(r"^module\s+(\S+)", mod.read_text(), re.MULTILINE)
            if m:
                sub = PurePosixPath(directory.relative_to(parent).as_posix())
                return m.group(1) if str(sub) == "." else f"{m.group(1)}/{sub}"
        if parent == repo:
            break
    return str(PurePosixPath(rel).parent)
