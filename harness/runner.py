"""`harness run`: plan every lane, bring up the world, run the lanes into one results stream, and
build every output from that stream, also when a lane crashed or the run was interrupted."""
from __future__ import annotations

import contextlib
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from harness import catalog
from harness.config import ConfigError, load, resolve_key
from harness.lanes import LaneEnv, lanes
from harness.outputs import write_all
from harness.outputs.terminal import Terminal
from harness.results import provenance, waivers as waiver_file
from harness.results.record import Record, Status
from harness.results.select import Selection
from harness.results.stream import StreamWriter, read
from harness.secrets import Redactor
from harness.world.processes import StartError
from harness.world.gateway_coverage import matrix as gateway_matrix, switch
from harness.world.world import World

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INFRA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


@dataclass
class RunOptions:
    config: Optional[Path]
    out: Path
    workers: str = "auto"
    only: tuple[str, ...] = ()
    lanes: tuple[str, ...] = ()
    keyword: str = ""
    matrices: Path = catalog.MATRICES
    verbose: bool = False       # a line per verdict
    debug: bool = False         # the tools' own output (pytest, locust), tracebacks
    load: bool = True           # run the load lane when harness.yaml has `load:`
    smoke: bool = True          # run the smoke matrix when harness.yaml has `smoke:`
    history: Optional[Path] = None    # None: beside the output directory
    waivers: Optional[Path] = None    # None: harness.yaml's `waivers:`
    repo: Any = None                  # a config.RepoCfg from `harness repo`, instead of harness.yaml's `repo:`
    gateway_coverage: bool = False    # measure the (Python) gateway with coverage.py, a context per lane and claim
    budget_s: Optional[float] = None        # the whole run: past it, nothing more is started (not judged)
    check_budget_s: Optional[float] = None  # one check: stopped past it (not judged)
    argv: list[str] = field(default_factory=list)


def history_dir(opts: RunOptions) -> Path:
    return opts.history or opts.out.parent / f"{opts.out.name}-history"


def run(opts: RunOptions) -> int:
    cfg, cfg_path = load(opts.config)
    selection = Selection(tuple(opts.only) or tuple(cfg.claims), tuple(opts.lanes), opts.keyword)
    _check_promises(cfg, cfg_path)
    if opts.gateway_coverage and (cfg.target.coverage is None or cfg.target.start is None):
        raise ConfigError(f"{cfg_path}: target.coverage: --gateway-coverage needs a gateway the harness starts and "
                          "target.coverage: {source: [its Python packages]}")
    key = resolve_key(cfg.target.auth, str(cfg_path))
    redactor = Redactor([key] if key else [])
    if cfg.promises.keys is not None:
        # Before anything starts: a missing admin_key_env is exit 2 naming the field, not an ERROR in
        # every keys claim; the key is masked in every file the run writes (the gateway's log too).
        redactor.add(cfg.promises.keys.admin_credential(str(cfg_path)))
    # Per-claim coverage contexts are exact only when one claim runs at a time.
    workers = "1" if opts.gateway_coverage else opts.workers
    env = LaneEnv(cfg, cfg_path, opts.out, redactor, key=key, workers=workers, debug=opts.debug,
                  matrices=opts.matrices, check_budget_s=opts.check_budget_s, extra={"no_load": not opts.load, "no_smoke": not opts.smoke, "repo": opts.repo})
    plans = [(lane, lane.plan(env, selection)) for lane in lanes()]   # bad input stops here, before anything starts
    plans = [(lane, planned) for lane, planned in plans if planned]
    if not plans:
        raise ConfigError(f"nothing to run: the selection ({selection.describe()}) matches no claim of any lane")
    waiver_path = opts.waivers or (cfg_path.parent / cfg.waivers if cfg.waivers else None)
    waivers = waiver_file.load(waiver_path) if waiver_path else []

    opts.out.mkdir(parents=True, exist_ok=True)
    for stale in ("results.json", "junit.xml", "report.md", "report.html"):
        (opts.out / stale).unlink(missing_ok=True)
    stream = StreamWriter(opts.out / "results.jsonl", redactor.data)
    terminal = Terminal(verbose=opts.verbose)
    stream.listen(terminal.on_event)
    claims_planned = any(getattr(lane, "from_catalog", False) for lane, _ in plans)
    catalog_rows = [c.model_dump() for c in env.extra.get("catalog", [])] if claims_planned else []
    catalog_rows += [{k: v for k, v in r.to_json().items() if k not in ("status", "reason", "evidence")}
                     for lane, planned in plans if not getattr(lane, "from_catalog", False) for r in planned]
    meta = provenance.describe(cfg, cfg_path, opts.matrices, opts.argv, {"version": "unknown", "source": "not asked: the gateway never started"},
                               {"selection": selection.describe(), "workers": workers, "budget_s": opts.budget_s,
                                "check_budget_s": opts.check_budget_s, "gateway_coverage": opts.gateway_coverage, "out": str(opts.out),
                                "history": str(history_dir(opts)), "waivers": str(waiver_path) if waiver_path else None})
    stream.start({**meta, "catalog": catalog_rows, "waivers": waivers,
                  "planned": {lane.name: [r.id for r in planned] for lane, planned in plans},
                  "release": cfg.release.model_dump()})

    infra_error: Optional[str] = None
    interrupted = False
    coverage_dir = (opts.out / "gateway-coverage").resolve() if opts.gateway_coverage else None
    if coverage_dir is not None:
        shutil.rmtree(coverage_dir, ignore_errors=True)
    started = time.time()
    env.deadline = started + opts.budget_s if opts.budget_s else None
    try:
        with contextlib.ExitStack() as stack:
            if any(lane.needs_world for lane, _ in plans):
                terminal.note("starting the mock providers and the gateway ..." + (
                    " (under coverage.py, one claim at a time)" if coverage_dir else ""))
                world = env.world = stack.enter_context(World(cfg, cfg_path, key, redactor, log_dir=opts.out / "logs",
                                                              coverage_dir=coverage_dir))
                assert world.info is not None
                terminal.world(world.info, world.pids)
            version = provenance.gateway_version(cfg, env.world.info.gateway_url if env.world else cfg.target.url)
            stream.start({"gateway": {"name": cfg.target.name, **version}})   # read back merged into the run line
            for lane, planned in plans:
                if env.deadline is not None and time.time() >= env.deadline:
                    for r in planned:
                        r.status, r.reason = Status.ERROR, (f"not judged: the run's budget of {opts.budget_s:g}s ran out "
                                                            f"before the {lane.name} lane")
                        stream.record(r)
                    continue
                if env.world is not None:
                    switch(env.world.info.coverage_dir, env.world.info.gateway_pid, f"lane:{lane.name}")
                infra_error = _run_lane(lane, planned, env, stream, terminal) or infra_error
        if coverage_dir is not None:   # the gateway has stopped and written its coverage data
            found = gateway_matrix(coverage_dir, {r.id: r.lane for r in stream.records})
            if found:
                stream.artifact("Gateway", "coverage", found)
    except StartError as exc:
        infra_error = redactor.text(str(exc))
        terminal.error(infra_error)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        reached = {r.id for r in stream.records}
        if interrupted:
            terminal.interrupted(len(reached))
        stream.end(interrupted=interrupted, infra_error=infra_error)
        stream.close()
        view = write_all(read(stream.path), opts.out, history_dir(opts), stream.path)
        terminal.final(view, opts.out)
    if interrupted:
        return EXIT_INTERRUPTED
    if infra_error:    # a world that could not start: the run is incomplete, whatever else it found
        return EXIT_INFRA
    return EXIT_FINDINGS if view["failing"] else EXIT_OK


def _check_promises(cfg, cfg_path: Path) -> None:
    """What the config schema cannot know alone: a failover preset must exist in the catalog."""
    from harness.policies import resolve
    try:
        resolve(cfg.promises.failover)
    except ConfigError as exc:
        raise ConfigError(f"{cfg_path}: {exc}") from None


def _run_lane(lane, planned: list[Record], env: LaneEnv, stream: StreamWriter, terminal: Terminal) -> Optional[str]:
    """Runs one lane; if it breaks, every planned record it did not reach becomes ERROR (not judged)
    with the reason, and the run goes on. Returns the reason when its world could not start."""
    stream.lane(lane.name, "start", ids=[r.id for r in planned])
    failure: Optional[str] = None
    start_error = None
    try:
        lane.run(env, planned, stream)
    except StartError as exc:
        failure = start_error = env.redactor.text(f"its world could not be started: {exc}")
    except Exception as exc:   # noqa: BLE001 - a lane's bug must not lose the others' verdicts
        failure = env.redactor.text(f"the {lane.name} lane crashed: {type(exc).__name__}: {exc}")
        log = env.out / "logs" / f"{lane.name}-crash.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(env.redactor.text(traceback.format_exc()))
        terminal.error(f"{failure} (traceback in {log})")
    finally:
        if failure:
            reached = {r.id for r in stream.records}
            for r in planned:
                if r.id not in reached:
                    r.status, r.reason = Status.ERROR, f"not judged: {failure}"
                    stream.record(r)
        stream.lane(lane.name, "end")
    return start_error
