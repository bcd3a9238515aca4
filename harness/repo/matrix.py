"""The source-to-test matrix (report 002's table), whatever the language: a row per module (a
Python file, a Go package), totals, and findings."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Optional

from harness.repo import tiers


@dataclass
class ModuleRow:
    module: str                          # gw/router.py, example.com/gw/router
    statements: int
    missed: int
    test_files: Optional[list[str]]      # the test files that execute it; None: not known (no contexts)
    tests: Optional[int] = None          # how many tests execute it; None: not known

    @property
    def cover(self) -> float:
        return round(tiers.percent(self.statements, self.missed), 1)

    @property
    def tier(self) -> str:
        return tiers.tier(self.statements, self.missed)

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "statements": self.statements, "missed": self.missed,
                "cover": self.cover, "tier": self.tier, "test_files": self.test_files, "tests": self.tests}


@dataclass
class Finding:
    test_file: str     # the test file (Python) or the package's test files (Go) that exist...
    module: str        # ...for a module they never execute
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": "over-mocked", "test_file": self.test_file, "module": self.module, "reason": self.reason}


@dataclass
class SourceMatrix:
    kind: str                                  # python, go
    modules: list[ModuleRow]
    contexts: bool                             # per-test data: test files and over-mocking are known
    over_mocked: list[Finding] = field(default_factory=list)
    unattributed: list[str] = field(default_factory=list)    # contexts naming no test of the suite
    executing: Optional[dict[str, set[str]]] = None          # module -> test ids (base) that execute it

    @property
    def total(self) -> ModuleRow:
        return ModuleRow("TOTAL", sum(r.statements for r in self.modules), sum(r.missed for r in self.modules), None)

    def row(self, module: str) -> Optional[ModuleRow]:
        """The row of `module`, named as a path (gw/cache.py), a dotted name (gw.cache), a Go package,
        or a unique tail of one (cache.py)."""
        want = module.strip().strip("/")
        forms = {want, want.replace(".", "/") + ".py"} if not want.endswith(".py") else {want}
        exact = [r for r in self.modules if r.module in forms]
        if exact:
            return exact[0]
        tails = [r for r in self.modules if any(r.module.endswith("/" + f) for f in forms)]
        return tails[0] if len(tails) == 1 else None

    def executes(self, module: str) -> Optional[set[str]]:
        """The tests that execute a module's lines; None when that cannot be known (no per-test
        data, or no such module measured)."""
        row = self.row(module)
        if self.executing is None or row is None:
            return None
        return self.executing.get(row.module, set())

    def by_tier(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {name: [] for name in tiers.NAMES}
        for r in self.modules:
            out[r.tier].append(r.module)
        return out

    def to_json(self) -> dict[str, Any]:
        total = self.total
        return {"kind": self.kind, "contexts": self.contexts, "thresholds": tiers.thresholds(),
                "modules": [r.to_json() for r in sorted(self.modules, key=lambda r: PurePosixPath(r.module).parts)],
                "total": {"statements": total.statements, "missed": total.missed, "cover": total.cover,
                          "tier": total.tier},
                "by_tier": self.by_tier(),
                "findings": [f.to_json() for f in self.over_mocked],
                "unattributed_contexts": self.unattributed}
