"""Which lane a test belongs to (report 000's rows), by the conventions teams use: the directory it
is in, its pytest marks or Go build tags, a telling word in its file name, Go's Benchmark/Fuzz/Example
functions. What matches none is Unit."""
from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Iterable, Optional

from harness.repo.model import TestItem

LANES = ("Unit", "Integration", "E2E", "Chaos", "Perf", "Security", "Docs")

# lane -> words that put a test in it (directory names, marks, build tags). Checked in PRIORITY
# order: a test in tests/integration/ marked `chaos` is a Chaos test.
WORDS: dict[str, frozenset[str]] = {
    "Chaos": frozenset({"chaos", "fault", "faults", "fault_injection", "faultinjection"}),
    "Perf": frozenset({"perf", "performance", "load", "loadtest", "bench", "benchmark", "benchmarks", "stress", "soak"}),
    "Security": frozenset({"security", "sec", "fuzz", "fuzzing", "pentest"}),
    "E2E": frozenset({"e2e", "end_to_end", "endtoend", "acceptance"}),
    "Integration": frozenset({"integration", "integrations", "integ", "it", "smoke", "contract"}),
    "Docs": frozenset({"docs", "doc", "doctest", "doctests", "examples"}),
    "Unit": frozenset({"unit", "units", "unittest", "unittests"}),
}
PRIORITY = ("Chaos", "Perf", "Security", "E2E", "Integration", "Docs", "Unit")
# Words of a file name that decide alone (router_integration_test.go); "load" or "doc" in a file name
# say too little (test_load_config.py is a unit test).
FILE_WORDS = frozenset({"integration", "e2e", "chaos", "perf", "benchmark", "security", "fuzz"})
GO_PREFIXES = (("Benchmark", "Perf"), ("Fuzz", "Security"), ("Example", "Docs"))


def lane_of_words(words: Iterable[str]) -> Optional[str]:
    """The lane the words name (a lane's own name counts), or None."""
    found = {w.lower() for w in words}
    for lane in PRIORITY:
        if lane.lower() in found or found & WORDS[lane]:
            return lane
    return None


def lane_of_test(item: TestItem) -> str:
    path = PurePosixPath(item.file) if item.file else None
    words = list(item.marks)
    if path is not None:
        words += [p.lower() for p in path.parent.parts]
        words += [w for w in re.split(r"[_\-.]+", path.stem.lower()) if w in FILE_WORDS]
    lane = lane_of_words(words)
    if lane:
        return lane
    func = item.name.split("/")[0].split("::")[-1]     # pytest functions start with test_, never these
    return next((lane for prefix, lane in GO_PREFIXES if func.startswith(prefix)), "Unit")


def lane_of_text(text: str) -> Optional[str]:
    """A lane named in free text (a plan's section title: "6. Chaos and faults"). Only a lane's name
    or a FILE_WORDS word counts: "it" or "load" in a sentence say nothing."""
    names = {lane.lower() for lane in LANES} | FILE_WORDS | {"performance"}
    return lane_of_words(w for w in re.findall(r"[a-z0-9_]+", text.lower()) if w in names)
