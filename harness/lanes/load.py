"""The load lane: each profile of `load:` through the gateway and straight at the provider; stream
buffering and each gate of harness.yaml become claims (CM-21.x), the tables an artifact."""
from __future__ import annotations

import time

from harness.lanes import LaneEnv
from harness.results.record import Record, Status
from harness.results.select import Selection
from harness.results.stream import StreamWriter

LANE = "Load"


class LoadLane:
    name = "load"
    needs_world = True

    def plan(self, env: LaneEnv, selection: Selection) -> list[Record]:
        from harness.load import claims as load_claims
        from harness.load.run import load_profile
        cfg = env.cfg
        if not cfg.load or env.extra.get("no_load"):
            return []
        planned = [Record.from_json({**r, "status": Status.NOT_RUN, "reason": ""})
                   for r in load_claims.errors(cfg, None, "")]
        planned = [r for r in planned if selection.wants(r.id, r.lane, r.test, r.claim)]
        if planned:
            env.extra["profiles"] = [load_profile(n) for n in cfg.load.names]   # a bad profile stops the run up front
        return planned

    def run(self, env: LaneEnv, planned: list[Record], stream: StreamWriter) -> None:
        from harness.load import claims as load_claims
        from harness.load.lane import auth_value, for_report, measure, write_outputs
        cfg = env.cfg
        assert cfg.load is not None
        wanted = {r.id for r in planned}
        per_profile = []
        for profile in env.extra["profiles"]:
            where = env.out / "load" / profile.name
            t0 = time.monotonic()
            try:
                result = measure(cfg, env.world, profile, auth_value(cfg, env.key), cfg.load.workers, cfg.load.direct,
                                 progress=env.debug)
            except Exception as exc:   # the generator broke, not the gateway: not judged, with the reason
                if isinstance(exc, KeyboardInterrupt):
                    raise
                why = env.redactor.text(f"not judged: the load run failed: {type(exc).__name__}: {exc}")
                per_profile.append(load_claims.errors(cfg, profile.name, why))
                continue
            write_outputs(result, where, env.redactor)
            files = [str((where / f).relative_to(env.out)) for f in ("load.html", "load.json", "load.csv")]
            per_profile.append(load_claims.records(result, time.monotonic() - t0))
            stream.artifact(LANE, profile.name, env.redactor.data(for_report(result, files)))
        for r in load_claims.combine(per_profile):
            if r["id"] in wanted:
                stream.record(Record.from_json(r))
