"""The inventory: every test of a repository with its file, category, lane, marks, the claims its
source names, and its result when it ran (report 002's "test inventory")."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Optional

from harness.repo.files import GO_TESTS, PY_TESTS, walk
from harness.repo.lanes import lane_of_test
from harness.repo.model import OUTCOMES, TestItem, TestResult, base_id
from harness.repo.static_go import import_path, scan_go
from harness.repo.static_py import scan_python


@dataclass
class Inventory:
    tests: list[TestItem]
    collection_errors: list[str] = field(default_factory=list)

    def by_id(self) -> dict[str, TestItem]:
        return {t.id: t for t in self.tests}

    def test_files(self) -> dict[str, list[str]]:
        """category (a directory or a Go package) -> its test files."""
        out: dict[str, set[str]] = {}
        for t in self.tests:
            if t.file:
                out.setdefault(t.category, set()).add(t.file)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def to_json(self) -> dict[str, Any]:
        return {"tests": len(self.tests),
                "by_category": _counts(self.tests, lambda t: t.category, "category"),
                "by_file": _counts(self.tests, lambda t: t.file or t.category, "file"),
                "by_lane": dict(Counter(t.lane for t in self.tests)),
                "collection_errors": self.collection_errors,
                "items": [t.to_json() for t in self.tests]}


def _counts(tests: list[TestItem], key, name: str) -> list[dict[str, Any]]:
    rows: dict[str, Counter] = {}
    for t in tests:
        rows.setdefault(key(t), Counter())[t.outcome or "not run"] += 1
    return [{name: k, "tests": sum(c.values()), **{o: c.get(o, 0) for o in (*OUTCOMES, "not run")}}
            for k, c in sorted(rows.items())]


def scan(repo: Path) -> list[TestItem]:
    """Every test the repository's source defines (Python and Go), read statically."""
    repo = Path(repo)
    items = [t for rel in walk(repo, PY_TESTS) for t in scan_python(rel, (repo / rel).read_text(errors="replace"))]
    items += [t for rel in walk(repo, GO_TESTS)
              for t in scan_go(rel, (repo / rel).read_text(errors="replace"), import_path(repo, rel))]
    return items


def inventory(repo: Optional[Path] = None, *, collected: Iterable[str] = (), results: Iterable[TestResult] = (),
              static: Optional[list[TestItem]] = None, collection_errors: Iterable[str] = ()) -> Inventory:
    """What the suite holds: the collected (or listed) ids and the results, annotated from the
    source (marks, claims, file, line). With neither, what the source defines. `static` replaces
    the scan of `repo` (tests at a git ref, say)."""
    known = static if static is not None else (scan(repo) if repo is not None else [])
    source = {t.id: t for t in known}
    results = list(results)
    by_result = {r.id: r for r in results}
    ids = list(dict.fromkeys([*collected, *(r.id for r in results)]))
    items = [_item(i, source, by_result.get(i)) for i in ids] if ids else [_copy(t) for t in known]
    for item in items:
        item.lane = lane_of_test(item)
    return Inventory(items, list(collection_errors))


def _item(test_id: str, source: dict[str, TestItem], result: Optional[TestResult]) -> TestItem:
    static = source.get(base_id(test_id))
    parent = static or _go_parent(test_id, source)
    file = (static.file if static else "") or (result.file if result else "") or \
        (parent.file if parent else "") or (test_id.split("::", 1)[0] if "::" in test_id else "")
    name = result.name if result else (test_id.split("::", 1)[1] if "::" in test_id else
                                       (static.name if static else test_id.rsplit(".", 1)[-1]))
    category = (result.category if result else "") or (static.category if static else "") or \
        (parent.category if parent else str(PurePosixPath(file).parent))
    return TestItem(id=test_id, file=file, name=name, category=category,
                    marks=list(parent.marks) if parent else [], claims=list(static.claims) if static else [],
                    line=(static or parent).line if (static or parent) else None, result=result)


def _go_parent(test_id: str, source: dict[str, TestItem]) -> Optional[TestItem]:
    """A Go subtest's enclosing test as the source defines it (for its file and build tags): the
    longest prefix ending before a "/" that is a known test."""
    if "::" in test_id:
        return None
    cut = len(test_id)
    while (cut := test_id.rfind("/", 0, cut)) > 0:
        if test_id[:cut] in source:
            return source[test_id[:cut]]
    return None


def _copy(t: TestItem) -> TestItem:
    return TestItem(t.id, t.file, t.name, t.category, t.lane, list(t.marks), list(t.claims), t.line, t.result)
