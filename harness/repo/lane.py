"""The whole repository lane in one call: run the team's suites (pytest under coverage, go test
with a cover profile), read what they are and did, join the team's plan, and hand back records and
artifacts for the results stream."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from harness.repo.claims import ClaimMap, map_claims
from harness.repo.gocov import go_matrix
from harness.repo.gorun import run_go
from harness.repo.files import PY_TESTS, walk
from harness.repo.inventory import Inventory, inventory
from harness.repo.lane_matrix import lane_matrix
from harness.repo.mapping import read_mapping
from harness.repo.matrix import SourceMatrix
from harness.repo.plan import DEFAULT_NAMESPACE, import_plan
from harness.repo.pycov import source_matrix
from harness.repo.pyrun import run_pytest
from harness.repo.records import records
from harness.repo.summary import test_summary
from harness.results.record import Record


@dataclass
class RepoLane:
    inventory: Inventory
    claims: Optional[ClaimMap]
    matrices: list[SourceMatrix]
    lanes: dict[str, Any]
    summary: dict[str, Any]
    runs: dict[str, Any] = field(default_factory=dict)     # language -> PytestRun / GoRun

    def records(self) -> list[Record]:
        return records(self.claims) if self.claims else []

    def artifacts(self) -> dict[str, Any]:
        """name -> plain data, for StreamWriter.artifact("Repository", name, data)."""
        out: dict[str, Any] = {"inventory": self.inventory.to_json(), "lane_matrix": self.lanes,
                               "test_summary": self.summary}
        for m in self.matrices:
            out[f"source_matrix_{m.kind}"] = m.to_json()
        if self.claims:
            out["claims"] = self.claims.to_json()
        return out


def languages(repo: Path) -> list[str]:
    """python when the repository has pytest-style test files, go when it has a go.mod at its root."""
    found = ["python"] if next(walk(repo, PY_TESTS), None) else []
    return found + (["go"] if (repo / "go.mod").is_file() else [])


def analyse(repo: Path, out_dir: Path, *, plan: Optional[Path] = None, mapping: Optional[Path] = None,
            namespace: str = DEFAULT_NAMESPACE, known_checks: Optional[set[str]] = None,
            since: Optional[str] = None, langs: Optional[Sequence[str]] = None,
            sources: Optional[Sequence[str]] = None, python: str = sys.executable,
            timeout_s: float = 900.0) -> RepoLane:
    """Bad plan or mapping files raise ConfigError before anything runs; a suite that cannot run
    raises proc.RepoRunError."""
    repo, out_dir = Path(repo).resolve(), Path(out_dir).resolve()
    claims = import_plan(plan, namespace, known_checks) if plan else None
    links = read_mapping(mapping, claims, namespace) if mapping else None
    tests, errors, matrices, runs = [], [], [], {}
    for lang in (langs or languages(repo)):
        if lang == "python":
            run = run_pytest(repo, out_dir / "python", sources=sources, python=python, timeout_s=timeout_s)
            inv = inventory(repo, collected=run.collection.ids, results=run.results)
            if run.coverage_file:
                matrices.append(source_matrix(run.coverage_file, repo, [t.id for t in inv.tests], run.rcfile))
            errors += run.collection.errors
        elif lang == "go":
            run = run_go(repo, out_dir / "go", timeout_s=timeout_s)
            inv = inventory(repo, collected=run.listed_ids, results=run.results)
            if run.profile:
                matrices.append(go_matrix(run.profile, inv.test_files()))
        else:
            raise ValueError(f"language {lang!r}: python or go")
        runs[lang] = run
        tests += inv.tests
    inv = Inventory(tests, errors)
    with_contexts = next((m for m in matrices if m.contexts), None)
    claim_map = map_claims(claims, inv, links, with_contexts) if claims else None
    return RepoLane(inv, claim_map, matrices, lane_matrix(inv, claim_map, repo=repo, since=since),
                    test_summary(inv), runs)
