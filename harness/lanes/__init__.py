"""The lanes of `harness run`, in the order they run. Each one plans (validates its inputs and
names the records it will produce, before anything starts) and runs (emits its records into the
results stream). A new lane is one module here and one line in `LANES`.

claims.py  the claim catalog (conformance, resilience, chaos) through pytest + xdist; then, alone,
           the process faults (the gateway killed and restarted)
load.py    load profiles with locust; stream buffering and the release gates as claims (CM-21.x)
smoke.py   the provider smoke matrix behind a gateway of its own; one record per cell
repo.py    the team's own tests and coverage, its plan of claims mapped to them (no gateway needed)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol

from harness.config import HarnessConfig
from harness.results.record import Record
from harness.results.select import Selection
from harness.results.stream import StreamWriter
from harness.secrets import Redactor


@dataclass
class LaneEnv:
    """What a lane runs with: the config, the running world, where to write, how loud to be."""
    cfg: HarnessConfig
    cfg_path: Path
    out: Path
    redactor: Redactor
    key: Optional[str] = None
    world: Any = None                 # world.World, started by the runner (None for lanes with a world of their own)
    workers: str = "auto"
    debug: bool = False               # show the tools' own output (pytest's, locust's)
    matrices: Optional[Path] = None
    deadline: Optional[float] = None          # the run's budget ends then (time.time()): nothing starts later
    check_budget_s: Optional[float] = None    # one check's budget
    extra: dict[str, Any] = field(default_factory=dict)


class Lane(Protocol):
    name: str
    needs_world: bool

    def plan(self, env: LaneEnv, selection: Selection) -> list[Record]:
        """The records this lane will produce (status NOT RUN), [] when it has nothing selected.
        Raises ConfigError for bad input, before anything starts."""

    def run(self, env: LaneEnv, planned: list[Record], stream: StreamWriter) -> None:
        """Judges the planned records and emits each into `stream` as soon as it is known."""


def lanes() -> list[Lane]:
    from harness.lanes.claims import ClaimsLane, ProcessLane
    from harness.lanes.load import LoadLane
    from harness.lanes.repo import RepoLane
    from harness.lanes.smoke import SmokeLane
    # Process faults kill the gateway: after every other claim. Load runs after every claim, alone:
    # it would disturb timing-sensitive claims and they it.
    return [ClaimsLane(), ProcessLane(), LoadLane(), SmokeLane(), RepoLane()]
