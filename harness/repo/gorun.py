"""Running a team's Go tests: `go test -list` (what exists) and `go test -json -coverprofile`
(what ran, and what it executed). GOTOOLCHAIN=local, so a go.mod asking for a newer Go fails here
instead of downloading a toolchain; GOFLAGS=-mod=mod unless the caller says otherwise."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

from harness.repo import proc
from harness.repo.gotest import parse_go_list, read_go_json
from harness.repo.model import TestResult

GO_ENV = {"GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}


@dataclass
class GoRun:
    repo: Path
    listing: dict[str, list[str]]        # package -> test names (go test -list)
    results: list[TestResult]
    events: Path                         # the go test -json stream, as written
    profile: Optional[Path]              # the -coverprofile, when run with coverage
    returncode: int
    output: str = ""

    @property
    def listed_ids(self) -> list[str]:
        return [f"{pkg}.{name}" for pkg, names in self.listing.items() for name in names]


def go_available(go: str = "go") -> bool:
    return shutil.which(go) is not None


def run_go(repo: Path, out_dir: Path, *, packages: Sequence[str] = ("./...",), go: str = "go",
           timeout_s: float = 900.0, coverage: bool = True, env: Optional[Mapping[str, str]] = None) -> GoRun:
    """A failing test is a result; a run that produced no event at all (no go, no module, a
    timeout) raises proc.RepoRunError."""
    repo, out_dir = Path(repo).resolve(), Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    goenv = {**GO_ENV, **(env or {})}
    listed = proc.run([go, "test", "-list", ".", *packages], repo, timeout_s, goenv)
    profile = out_dir / "cover.out"
    profile.unlink(missing_ok=True)
    args = [go, "test", "-json", *([f"-coverprofile={profile}"] if coverage else []), *packages]
    done = proc.run(args, repo, timeout_s, goenv)
    events = out_dir / "go-test.json"
    events.write_text(done.stdout)
    results = read_go_json(events, done.stdout)
    if not results and done.returncode != 0:
        raise proc.RepoRunError(f"{' '.join(args)} in {repo}: exit {done.returncode}:\n{proc.tail(done.stderr or done.stdout)}")
    return GoRun(repo=repo, listing=parse_go_list(listed.stdout), results=results, events=events,
                 profile=profile if coverage and profile.is_file() else None, returncode=done.returncode,
                 output=proc.tail(done.stderr))
