"""The repository lane: the gateway team's own test suite run under coverage, its plan of claims
mapped to its tests (COVERED / PARTIAL / MISSING), the source-to-test matrix, the lane matrix and
the test summary. One record per team claim (ids in the team's namespace), the rest artifacts."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from harness.lanes import LaneEnv
from harness.results.record import Record, Status
from harness.results.select import Selection
from harness.results.stream import StreamWriter

LANE = "Repository"


def _path(env: LaneEnv, value: Optional[str]) -> Optional[Path]:
    return (env.cfg_path.parent / value).resolve() if value else None


class RepoLane:
    name = "repo"
    needs_world = False

    def plan(self, env: LaneEnv, selection: Selection) -> list[Record]:
        from harness.checks.base import load_all
        from harness.repo import import_plan
        spec = env.extra.get("repo") or env.cfg.repo
        if spec is None:
            return []
        repo = _path(env, spec.path)
        if repo is None or not repo.is_dir():
            from harness.config import ConfigError
            raise ConfigError(f"{env.cfg_path}: repo.path: {spec.path!r} is not a directory")
        env.extra["repo_spec"] = spec
        known = set(load_all())
        planned = []
        if spec.plan:   # a bad plan stops the run here, before anything starts
            for c in import_plan(_path(env, spec.plan), spec.namespace, known):
                planned.append(Record(c.id, LANE, c.section, Status.NOT_RUN, "", claim=c.claim, test=c.test,
                                      risk=c.risk, wave=c.wave, check=None))
        # No plan: the lane still reads the suite (inventory, coverage, summary); one record says so.
        planned = planned or [Record("team:suite", LANE, "Repository", Status.NOT_RUN, "",
                                     claim="The team's own test suite runs", test="team_suite")]
        # The suite runs whole: the lane is in when any of its records is selected.
        return planned if selection.wants_any((r.id, r.lane, r.test, r.claim) for r in planned) else []

    def run(self, env: LaneEnv, planned: list[Record], stream: StreamWriter) -> None:
        from harness.checks.base import load_all
        from harness.repo import analyse
        spec = env.extra["repo_spec"]
        lane = analyse(_path(env, spec.path), env.out / "repo", plan=_path(env, spec.plan),
                       mapping=_path(env, spec.mapping), namespace=spec.namespace, known_checks=set(load_all()),
                       since=spec.since, langs=spec.langs, sources=spec.sources, timeout_s=spec.timeout_s)
        for name, data in lane.artifacts().items():
            stream.artifact(LANE, name, data)
        records = lane.records()
        if not spec.plan:
            s = lane.summary
            status = Status.PASS if not (s.get("failed") or s.get("error")) else Status.FAIL
            records = [Record("team:suite", LANE, "Repository", status,
                              f"{s.get('total', 0)} tests: {s.get('passed', 0)} passed, {s.get('failed', 0)} failed, "
                              f"{s.get('skipped', 0)} skipped", claim="The team's own test suite runs", test="team_suite",
                              evidence={"summary": {k: v for k, v in s.items() if k != "categories"}})]
        for r in records:
            stream.record(r)
