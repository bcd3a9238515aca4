"""The source-to-test matrix of a Python repository, read from coverage.py data with the coverage
API: per module its statements, missed, cover and tier (tiers.py), which test files execute it
(from per-test contexts), and the over-mocking finding: a test file named for a module (test_foo.py
for foo.py) that executes none of that module's lines."""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Iterable, Optional

import coverage
from coverage.exceptions import CoverageException, NoSource

from harness.config import ConfigError
from harness.repo.contexts import Resolver
from harness.repo.files import PY_TESTS, test_file_stem
from harness.repo.matrix import Finding, ModuleRow, SourceMatrix
from harness.repo.model import base_id


def source_matrix(data_file: Path, repo: Path, tests: Iterable[str], rcfile: Optional[Path] = None) -> SourceMatrix:
    """`data_file`: a .coverage file (ours from pyrun, or the team's own); `tests`: the suite's test
    ids, to attribute contexts and to find test files named for modules. Files outside `repo`, and
    test files themselves, are not modules."""
    repo = Path(repo).resolve()
    test_ids = list(tests)
    cov = coverage.Coverage(data_file=str(data_file), config_file=str(rcfile) if rcfile else False)
    try:
        cov.load()
        data = cov.get_data()
        data.set_query_contexts(None)
        measured = sorted(data.measured_files())
    except CoverageException as exc:
        raise ConfigError(f"{data_file}: not coverage.py data: {exc}") from None
    contexts = any(c for c in data.measured_contexts())
    resolver = Resolver(test_ids)
    rows: list[ModuleRow] = []
    executing: dict[str, set[str]] = {}
    unattributed: set[str] = set()
    for path in measured:
        module = _relative(path, repo)
        if module is None or _is_test_file(module):
            continue
        try:
            _, statements, _, missing, _ = cov.analysis2(path)
        except NoSource:
            raise ConfigError(f"{data_file}: measured {path}, which is not there any more") from None
        tests_here: set[str] = set()
        for names in (data.contexts_by_lineno(path) or {}).values():
            for ctx in names:
                found = resolver.tests(ctx)
                tests_here |= found
                if ctx and not found:
                    unattributed.add(ctx)
        executing[module] = tests_here
        files = sorted({t.split("::", 1)[0] for t in tests_here}) if contexts else None
        rows.append(ModuleRow(module, len(statements), len(missing), files,
                              len(tests_here) if contexts else None))
    findings = _over_mocked(rows, executing, test_ids) if contexts else []
    return SourceMatrix("python", rows, contexts, findings, sorted(unattributed), executing if contexts else None)


def _relative(path: str, repo: Path) -> Optional[str]:
    try:
        return Path(path).resolve().relative_to(repo).as_posix()
    except ValueError:
        return None


def _is_test_file(module: str) -> bool:
    name = PurePosixPath(module).name
    return name == "conftest.py" or any(PurePosixPath(name).match(p) for p in PY_TESTS)


def _over_mocked(rows: list[ModuleRow], executing: dict[str, set[str]], test_ids: list[str]) -> list[Finding]:
    """Each test file named for a module (by stem) that executes none of any such module's lines."""
    by_stem: dict[str, list[ModuleRow]] = {}
    for row in rows:
        if row.statements:
            by_stem.setdefault(PurePosixPath(row.module).stem, []).append(row)
    out = []
    for test_file in sorted({base_id(t).split("::", 1)[0] for t in test_ids if "::" in t}):
        named = by_stem.get(test_file_stem(test_file), [])
        hits = [r for r in named if any(t.startswith(test_file + "::") for t in executing.get(r.module, ()))]
        if named and not hits:
            count = sum(1 for t in {base_id(x) for x in test_ids} if t.startswith(test_file + "::"))
            out += [Finding(test_file, r.module, f"{count} test(s) in {test_file} execute none of {r.module}'s "
                            f"{r.statements} statements: mocked away, or testing something else") for r in named]
    return out
