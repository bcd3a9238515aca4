"""What a repository's tests are and did, in one shape whatever the language or the runner.

A test id is `file::name` for Python and JavaScript-like suites (`tests/unit/test_x.py::TestC::test_y[1]`,
the pytest node id) and `package.Test/Subtest` for Go (`example.com/gw/router.TestPick/cheapest`).
Everything else in harness.repo keys on these ids.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

PASSED, FAILED, SKIPPED, ERROR = "passed", "failed", "skipped", "error"
OUTCOMES = (PASSED, FAILED, SKIPPED, ERROR)


@dataclass
class TestResult:
    """One test case as it ran."""
    __test__ = False      # not a pytest class, whatever its name

    id: str
    name: str             # the test's own name: test_y[1], TestPick/cheapest
    file: str             # the file it lives in, or "" where the runner does not say (Go: the package)
    category: str         # a directory (tests/unit) or a package (example.com/gw/router)
    outcome: str          # passed, failed, skipped, error
    duration_s: float = 0.0
    skip_reason: str = ""
    message: str = ""     # a failure's or error's message, first line
    details: str = ""     # the failure's text (traceback, Go output), cut to DETAILS_MAX

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


DETAILS_MAX = 4000


@dataclass
class TestItem:
    """One test of the inventory: what exists (collected, listed or read from source) and, when it
    ran, how it went."""
    __test__ = False

    id: str
    file: str
    name: str
    category: str
    lane: str = "Unit"
    marks: list[str] = field(default_factory=list)      # pytest marks, Go build tags
    claims: list[str] = field(default_factory=list)     # claim ids the source names (markers, comments, subtests)
    line: Optional[int] = None
    result: Optional[TestResult] = None

    @property
    def outcome(self) -> Optional[str]:
        return self.result.outcome if self.result else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["outcome"] = self.outcome
        return out


_PARAMS = re.compile(r"\[.*\]$")


def base_id(test_id: str) -> str:
    """The id without pytest's parameter suffix: test_y[1] and test_y[2] are one test in the source."""
    return _PARAMS.sub("", test_id)


def id_matches(test_id: str, target: str) -> bool:
    """Whether `target` (a test id from a mapping or a marker) names `test_id`: the same test, any of
    its parameter cases, or a file, class or Go parent test that holds it."""
    return (test_id == target or base_id(test_id) == target
            or test_id.startswith(target + "::") or test_id.startswith(target + "/"))


def leaf(name: str) -> str:
    """The innermost part of a test's name: the function of `TestC::test_y[1]`, the subtest of
    `TestPick/cheapest`."""
    return re.split(r"::|/", base_id(name))[-1]
