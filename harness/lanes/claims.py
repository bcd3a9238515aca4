"""The claim catalog (matrices/claims, matrices/chaos; matrices/process in a lane of its own) as pytest items, run in this process with
xdist; each verdict reaches the results stream through `RecordSink` the moment its item ends."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from harness import catalog
from harness.checks import base
from harness.lanes import LaneEnv
from harness.results.record import Record, Status
from harness.results.select import Selection
from harness.results.stream import StreamWriter
from harness.world import processes
from harness.world.world import WORLD_ENV


def as_record(claim: catalog.Claim, status: Status = Status.NOT_RUN, reason: str = "") -> Record:
    return Record.from_json({**claim.model_dump(), "status": status, "reason": reason})


class ClaimsLane:
    name = "claims"
    needs_world = True
    from_catalog = True              # its records are the catalog's claims (the run line lists them all)
    dirs = ("claims", "chaos")       # its share of matrices/
    serial = False                   # xdist workers, unless the run says one

    def plan(self, env: LaneEnv, selection: Selection) -> list[Record]:
        matrices = env.matrices or catalog.MATRICES
        claims = catalog.load_all(matrices, known_checks=set(base.load_all()))   # ids unique across lanes
        env.extra["catalog"] = claims
        ours = catalog.ids_in(matrices, self.dirs)
        return [as_record(c) for c in claims if c.id in ours and selection.wants(c.id, c.lane, c.test, c.claim)]

    def run(self, env: LaneEnv, planned: list[Record], stream: StreamWriter) -> None:
        from harness.pytest_plugin import RecordSink
        matrices = env.matrices or catalog.MATRICES
        args = [*map(str, catalog.claim_dirs(matrices, self.dirs)), "-c", str(Path(__file__).parent.parent / "claims.ini"),
                "--rootdir", str(matrices), "-p", "harness.pytest_plugin", "-s", "-rfE", "--tb=short",
                "-v" if env.debug else "-q"]
        if env.workers not in ("0", "1") and not self.serial:
            args += ["-n", env.workers, "--dist", "loadgroup"]
        for r in planned:   # exactly the planned ids: one selection rule, applied once, by the runner
            args += ["--harness-only", r.id]
        if env.deadline is not None:
            args += ["--harness-deadline", repr(env.deadline)]
        if env.check_budget_s is not None:
            args += ["--harness-check-budget", repr(env.check_budget_s)]
        os.environ[WORLD_ENV] = str(env.world.info_path)
        log = env.out / "logs" / "pytest.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(log, "w") as f, (contextlib.nullcontext() if env.debug else contextlib.redirect_stdout(f)):
                try:
                    rc = pytest.main(args, plugins=[RecordSink(stream)])
                except Exception:
                    # pytest's own interrupt reporting can crash when the signal lands mid-frame
                    # (a traceback entry without a line number): still an interrupt, not a bug of ours.
                    if processes.interrupted():
                        raise KeyboardInterrupt from None
                    raise
        finally:
            os.environ.pop(WORLD_ENV, None)
        if rc == pytest.ExitCode.INTERRUPTED:
            raise KeyboardInterrupt
        if rc in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
            raise RuntimeError(f"pytest exited {int(rc)} (see {log})")


class ProcessLane(ClaimsLane):
    """Process faults (matrices/process): they kill and restart the gateway, so they run after every
    other claim, one at a time, in this process."""
    name = "process"
    dirs = ("process",)
    serial = True
