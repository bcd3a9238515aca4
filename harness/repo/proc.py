"""Running a team's tools (pytest, go, git) as children: a deadline on each, a clean environment,
the output kept for the error message."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from harness.world.processes import kill_group


class RepoRunError(RuntimeError):
    """A tool could not run or did not finish in time (not a test failure: that is a result)."""


# Variables that the harness's own test run or coverage set, and that would leak into the team's
# run: xdist's worker ids, pytest's current test, a coverage process-start hook writing our data.
_SCRUB_PREFIXES = ("PYTEST_XDIST_", "COV_CORE_")
_SCRUB = {"PYTEST_CURRENT_TEST", "COVERAGE_PROCESS_START", "COVERAGE_RCFILE", "COVERAGE_FILE"}


def child_env(extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith(_SCRUB_PREFIXES)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"   # leave no __pycache__ in the team's tree
    env.update(extra or {})
    return env


@dataclass
class Completed:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def run(args: Sequence[str], cwd: Path, timeout_s: float, env: Optional[Mapping[str, str]] = None) -> Completed:
    """Runs to completion within `timeout_s`; past it the child's whole process group is killed
    (a test suite's own children too) and RepoRunError says which command and how long."""
    try:
        proc = subprocess.Popen(list(args), cwd=cwd, env=child_env(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                errors="replace", start_new_session=True)
    except OSError as exc:
        raise RepoRunError(f"{args[0]}: cannot run: {exc.strerror or exc}") from None
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise RepoRunError(f"{' '.join(args)}: did not finish within {timeout_s:g} s (in {cwd})") from None
    except BaseException:   # Ctrl-C: the child has its own session, so it would outlive us
        _kill(proc)
        raise
    return Completed(list(args), proc.returncode, out, err)


def _kill(proc: subprocess.Popen) -> None:
    kill_group(proc)
    proc.communicate()


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
