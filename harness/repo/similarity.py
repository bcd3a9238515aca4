"""The plan's test name against the suite's: a scored list of likely matches for a person to
confirm (then write the link into the mapping file or a marker). Names are compared without the
test_/Test prefix, in snake case (TestBreakerOpens and test_breaker_opens are equal), by difflib's
ratio."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from difflib import SequenceMatcher
from typing import Any, Iterable

from harness.repo.model import leaf

NAME_MATCH = 0.85   # at or above: taken as a link by name (PARTIAL until confirmed)
SUGGEST = 0.6       # at or above: listed as a suggestion, not a link
KEEP = 3            # suggestions kept per claim


@dataclass
class Suggestion:
    test: str        # a test id of the suite
    score: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def normalise(name: str) -> str:
    # camel case -> snake case, acronyms kept whole: TestHTTPServerStarts -> test_http_server_starts
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", leaf(name))
    name = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return re.sub(r"^test_?", "", name)


def suggest(plan_name: str, test_ids: Iterable[str], names: dict[str, str]) -> list[Suggestion]:
    """The suite's tests most like `plan_name`, best first, each scoring at least SUGGEST.
    `names` maps a test id to its name (the part after the file)."""
    wanted = normalise(plan_name)
    if not wanted:
        return []
    scored: dict[str, float] = {}
    for test_id in test_ids:
        have = normalise(names.get(test_id, test_id))
        score = 1.0 if have == wanted else SequenceMatcher(None, wanted, have, autojunk=False).ratio()
        if score >= SUGGEST:
            scored[test_id] = max(score, scored.get(test_id, 0.0))
    best = sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))[:KEEP]
    return [Suggestion(t, round(s, 3)) for t, s in best]
