"""Coverage contexts -> test ids. Two kinds of context name a test:
  coverage's own `dynamic_context = test_function`:  test_router.TestSplit.test_split_round_trip
      (the module as Python imported it, then the qualified function name);
  pytest-cov's `--cov-context=test`:                  tests/unit/test_router.py::TestSplit::test_x[1]|run
The first is resolved against the suite's test ids (every dotted tail of a test file's path is a
module name it may have been imported under)."""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Iterable

from harness.repo.model import base_id


class Resolver:
    def __init__(self, test_ids: Iterable[str]) -> None:
        self._by_name: dict[str, set[str]] = {}
        for test_id in {base_id(t) for t in test_ids if "::" in t}:
            file, *qual = test_id.split("::")
            parts = list(PurePosixPath(file).with_suffix("").parts)
            for i in range(len(parts)):
                self._by_name.setdefault(".".join(parts[i:] + qual), set()).add(test_id)

    def tests(self, context: str) -> set[str]:
        """The (parameter-free) test ids a context stands for; empty for the no-test context "" and
        for a context naming no test of the suite."""
        if not context:
            return set()
        if "::" in context:
            return {base_id(context.rsplit("|", 1)[0])}
        return set(self._by_name.get(context, ()))
