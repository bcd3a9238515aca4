"""What a pytest suite holds: `pytest --collect-only -q` output (node ids) or `-qq` (counts per
file), and the collection errors it reports."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_ERROR = re.compile(r"^ERROR (?:collecting )?(\S+)")
_COUNT = re.compile(r"^(\S+\.py): (\d+)$")


@dataclass
class Collection:
    ids: list[str] = field(default_factory=list)            # node ids, in collection order
    counts: dict[str, int] = field(default_factory=dict)    # file -> tests (what -qq prints)
    errors: list[str] = field(default_factory=list)         # files that could not be collected


def parse_collect_only(text: str) -> Collection:
    out = Collection()
    for raw in text.splitlines():
        line = raw.strip()
        m = _ERROR.match(line)
        if m:
            if m.group(1) not in out.errors:
                out.errors.append(m.group(1))
        elif "::" in line and " " not in line.split("[", 1)[0]:
            out.ids.append(line)
        elif (m := _COUNT.match(line)):
            out.counts[m.group(1)] = int(m.group(2))
    for test_id in out.ids:
        file = test_id.split("::", 1)[0]
        out.counts[file] = out.counts.get(file, 0) + 1
    return out


def collect_args(python: str, repo: Path, paths: list[str]) -> list[str]:
    """The command that lists a suite without running it (rootdir pinned: ids relative to the repo)."""
    return [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", f"--rootdir={repo}", *paths]
