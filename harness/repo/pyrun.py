"""Running a team's pytest suite: collect it, then run it under coverage.py with a dynamic context
per test function, writing JUnit XML. The coverage rcfile is generated (the team's own, if any, is
not used), so every run measures the same way: the source directories given, contexts on."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from harness.repo import junit, proc
from harness.repo.model import TestResult
from harness.repo.pytest_collect import Collection, collect_args, parse_collect_only

NOT_SOURCE = {"tests", "test", "testing", "docs", "doc", "examples", "benchmarks", "scripts"}
# pytest exit codes: 0 passed, 1 some failed, 2 interrupted (collection errors), 5 no tests;
# 3 (internal error) and 4 (usage error) mean the run itself is broken.
_BROKEN = (3, 4)


@dataclass
class PytestRun:
    repo: Path
    collection: Collection
    results: list[TestResult]
    junit: Path
    coverage_file: Optional[Path]       # None when run without coverage
    rcfile: Optional[Path]
    returncode: int
    output: str = ""                    # the last lines of pytest's output
    sources: list[str] = field(default_factory=list)


def default_sources(repo: Path) -> list[str]:
    """What a team's code usually is: src/, else the top-level packages that are not tests or docs.
    Any other layout (top-level modules, several roots) is named with run_pytest's `sources`."""
    if (repo / "src").is_dir():
        return ["src"]
    return sorted(p.name for p in repo.iterdir()
                  if p.is_dir() and (p / "__init__.py").is_file() and p.name.lower() not in NOT_SOURCE)


def write_rcfile(out_dir: Path, repo: Path, sources: Sequence[str]) -> Path:
    lines = ["[run]", f"data_file = {out_dir / '.coverage'}",
             "dynamic_context = test_function",            # one context per test: which test ran which line
             "source ="] + [f"    {(repo / s).resolve()}" for s in sources]
    rc = out_dir / "coveragerc"
    rc.write_text("\n".join(lines) + "\n")
    return rc


def run_pytest(repo: Path, out_dir: Path, *, sources: Optional[Sequence[str]] = None, paths: Sequence[str] = (),
               python: str = sys.executable, timeout_s: float = 900.0, coverage: bool = True,
               extra_args: Sequence[str] = ()) -> PytestRun:
    """Collects, then runs the suite at `repo` with `python` (the team's interpreter; coverage.py
    must be installed there when `coverage`). Files go to `out_dir`. A failing test is a result; a
    run that could not happen (usage error, no JUnit written, timeout) raises proc.RepoRunError."""
    repo, out_dir = Path(repo).resolve(), Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    listed = proc.run(collect_args(python, repo, list(paths)), repo, timeout_s)
    if listed.returncode in _BROKEN:
        raise proc.RepoRunError(f"pytest --collect-only in {repo}: exit {listed.returncode}:\n"
                                f"{proc.tail(listed.stdout + listed.stderr)}")
    collection = parse_collect_only(listed.stdout)
    report = out_dir / "junit.xml"
    report.unlink(missing_ok=True)
    pytest_args = ["-p", "no:cacheprovider", f"--rootdir={repo}", f"--junitxml={report}",
                   "-o", "junit_family=xunit1",        # file and line on every case: exact test ids
                   "-o", "junit_suite_name=pytest", *extra_args, *paths]
    srcs = list(sources) if sources is not None else default_sources(repo)
    rc = None
    if coverage:
        rc = write_rcfile(out_dir, repo, srcs)
        (out_dir / ".coverage").unlink(missing_ok=True)
        # -p no:cov: pytest-cov, if the team's addopts turn it on, would fight ours over the tracer.
        args = [python, "-m", "coverage", "run", f"--rcfile={rc}", "-m", "pytest", "-p", "no:cov", *pytest_args]
    else:
        args = [python, "-m", "pytest", *pytest_args]
    done = proc.run(args, repo, timeout_s)
    output = proc.tail(done.stdout + done.stderr)
    if done.returncode in _BROKEN or not report.is_file():
        raise proc.RepoRunError(f"{' '.join(args[:6])} ... in {repo}: exit {done.returncode}, no test report:\n{output}")
    data = out_dir / ".coverage"
    return PytestRun(repo=repo, collection=collection, results=junit.read_junit(report, flavor="pytest"),
                     junit=report, coverage_file=data if coverage and data.is_file() else None, rcfile=rc,
                     returncode=done.returncode, output=output, sources=srcs)
