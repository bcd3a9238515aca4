"""Collects the claim catalog as pytest items, so `pytest -n auto` and xdist just work.

Loaded with `-p harness.pytest_plugin`. The controller process owns the world (mock providers
and gateway): it uses the one named by $HARNESS_WORLD (how `harness run` calls it) or starts one
itself; xdist workers only read the world file. Each item's verdict travels back to the controller
in its report's user_properties, where a `RecordSink` appends it to the results stream at once.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from harness import catalog
from harness.checks import base
from harness.client.control import ProviderControl
from harness.client.http import GatewayClient
from harness.config import HarnessConfig, load
from harness.results.record import Record, Status
from harness.results.select import Selection
from harness.results.stream import StreamWriter
from harness.secrets import Redactor
from harness.world.world import WORLD_ENV, WorldInfo

RECORD = "harness_record"


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("harness", "llm-gateway-harness")
    g.addoption("--harness-config", default=None, help="harness.yaml (default: the embedded LiteLLM target)")
    g.addoption("--harness-results", default=None, help="append the verdicts to this results.jsonl")
    g.addoption("--harness-only", action="append", default=[], metavar="ID",
                help="run only claims whose id is ID or starts with ID. (repeatable)")
    g.addoption("--harness-lane", action="append", default=[], metavar="LANE", help="run only this lane's claims")
    g.addoption("--harness-keyword", default="", metavar="TEXT", help="run only claims whose id, test or claim has TEXT")
    g.addoption("--harness-deadline", type=float, default=None, metavar="EPOCH",
                help="the run's budget ends at this time: later claims are not judged")
    g.addoption("--harness-check-budget", type=float, default=None, metavar="SECONDS",
                help="a check that runs longer is stopped and not judged")


class _State:
    def __init__(self) -> None:
        self.ctx: Optional[base.CheckContext] = None
        self.info: Optional[WorldInfo] = None
        self.cfg: Optional[HarnessConfig] = None
        self.redactor = Redactor()
        self.world = None


class RecordSink:
    """On the controller: each claim's record, from its report, into the results stream."""

    def __init__(self, stream: StreamWriter) -> None:
        self.stream = stream

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = getattr(report, "user_properties", [])
        found = [v for k, v in props if k == RECORD]
        if not found:
            return
        report.user_properties = [(k, v) for k, v in props if k != RECORD]   # the record travels once
        if report.when == "call":
            self.stream.record(Record.from_json(json.loads(found[-1])))


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    state = _State()
    config.stash[_KEY] = state
    base.load_all()
    results = config.getoption("--harness-results", None)
    if _is_controller(config) and results is not None:
        # Plain `pytest -p harness.pytest_plugin matrices/claims --harness-results r.jsonl`: a stream of
        # its own, and a world of its own unless $HARNESS_WORLD names one.
        stream = StreamWriter(Path(results), state.redactor.data)
        stream.start({"command": "pytest", "standalone": True})
        config.pluginmanager.register(RecordSink(stream), "harness-record-sink")
        config.add_cleanup(stream.close)
        config.add_cleanup(lambda: stream.end())
        if WORLD_ENV not in os.environ:
            from harness.config import resolve_key
            from harness.world.world import World
            path = config.getoption("--harness-config")
            cfg, cfg_path = load(Path(path) if path else None)
            key = resolve_key(cfg.target.auth, str(cfg_path))
            state.redactor.add(key)
            if cfg.promises.keys is not None:   # a missing admin key stops the run here, not in every keys claim
                state.redactor.add(cfg.promises.keys.admin_credential(str(cfg_path)))
            state.world = World(cfg, cfg_path, key, state.redactor)
            state.world.__enter__()
            os.environ[WORLD_ENV] = str(state.world.info_path)
            config.add_cleanup(state.world.stop)


_KEY = pytest.StashKey[_State]()


def _context(config: pytest.Config) -> base.CheckContext:
    state = config.stash[_KEY]
    if state.ctx is None:
        world_file = os.environ.get(WORLD_ENV)
        if not world_file:
            raise pytest.UsageError(f"no world to test: run `harness run`, or pass --harness-results so the "
                                    f"plugin starts one, or set {WORLD_ENV}")
        info = state.info = WorldInfo.load(Path(world_file))
        cfg, _ = load(Path(info.config_path))
        state.cfg = cfg
        state.redactor.add(info.gateway_key)
        from harness.world.routes import Routes
        auth = cfg.target.auth
        routes = Routes(cfg, info.providers)
        d = cfg.deadlines
        gateway = GatewayClient(info.gateway_url, auth.header, auth.value(info.gateway_key), connect_s=d.connect_s,
                                read_s=d.read_s, request_s=d.request_s, stream_s=d.stream_s,
                                headers=routes.target_headers())
        providers = {name: ProviderControl(name, p.get("control_url", p["url"]),
                                           refuses=p.get("refuses_connections", False))
                     for name, p in info.providers.items()}
        state.ctx = base.CheckContext(cfg, gateway, providers, info.gateway_key, routes=routes)
        state.ctx.gateway_logs = info.gateway_logs   # the gateway's own log, when the harness started it
        if info.secrets_file:   # keys a check made in any worker: masked in what this one prints too
            state.redactor.follow(info.secrets_file)
            state.ctx.secrets_file = info.secrets_file
        if info.process_control:   # the harness started the gateway: process faults may kill and restart it
            from harness.client.process import ProcessControl
            state.ctx.process = ProcessControl(**info.process_control)
            config.add_cleanup(state.ctx.process.close)
        if info.chaos_url:
            from harness.chaos.client import ChaosControl
            state.ctx.chaos = ChaosControl(info.chaos_url)
            state.ctx.chaos_proxies = info.chaos_proxies
            config.add_cleanup(state.ctx.chaos.close)
        config.add_cleanup(gateway.close)
        for p in providers.values():
            config.add_cleanup(p.close)
    return state.ctx


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Optional[pytest.Collector]:
    if file_path.suffix == ".yaml" and file_path.parent.name in catalog.LANE_DIRS:
        return ClaimFile.from_parent(parent, path=file_path)
    return None


class ClaimFile(pytest.File):
    def collect(self):
        opt = self.config.getoption
        selection = Selection(tuple(opt("--harness-only") or ()), tuple(opt("--harness-lane") or ()),
                              opt("--harness-keyword") or "")
        for claim in catalog.load_file(self.path):
            if not selection.wants(claim.id, claim.lane, claim.test, claim.claim):
                continue
            name = f"{claim.test}[{claim.id}]"
            if claim.group:
                # With --dist loadgroup, one worker runs the whole group in order. xdist reads the group
                # from a nodeid ending in `@group`; its own marker handling writes `item._nodeid`, which
                # pytest 9 no longer reads, so the name carries it (the marker stays for -m and older xdist).
                name += f"@{claim.group}"
            item = ClaimItem.from_parent(self, name=name, claim=claim)
            if claim.group:
                item.add_marker(pytest.mark.xdist_group(claim.group))
            yield item


class ClaimFailure(Exception):
    pass


class BudgetExceeded(Exception):
    pass


@contextlib.contextmanager
def _budget(seconds: Optional[float]):
    """Stops the check (an exception raised where it is, in a blocking read too) once `seconds`
    have passed. A timer signal works in the main thread only: where a check runs elsewhere, the
    check's own deadlines are the bound."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise BudgetExceeded(f"the check's budget of {seconds:g}s ran out")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(0.01, seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class ClaimItem(pytest.Item):
    def __init__(self, *, claim: catalog.Claim, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.claim = claim

    def runtest(self) -> None:
        claim = self.claim
        started = time.time()
        deadline = self.config.getoption("--harness-deadline")
        budget = self.config.getoption("--harness-check-budget")
        if claim.check is None:
            verdict = base.Verdict(base.MISSING, "no automated check for this claim yet")
        elif deadline is not None and started >= deadline:
            verdict = base.Verdict(base.ERROR, "not judged: the run's budget ran out before this claim")
        else:
            ctx = _context(self.config)
            ctx.claim_id = claim.id
            info = self.config.stash[_KEY].info
            if info is not None and info.coverage_dir:   # the gateway is measured: what runs now is this claim's
                from harness.world.gateway_coverage import switch
                # read again: a process fault may have started the gateway anew, under another pid
                switch(info.coverage_dir, WorldInfo.load(Path(os.environ[WORLD_ENV])).gateway_pid, claim.id)
            limits = [x for x in (budget, deadline - started if deadline else None) if x is not None]
            try:
                with _budget(min(limits) if limits else None):
                    verdict = base.run(ctx, claim.check, dict(claim.params))
            except BudgetExceeded as exc:
                verdict = base.Verdict(base.ERROR, f"not judged: {exc}")
            except Exception as exc:  # the check itself broke: not judged, never the gateway's FAIL
                verdict = base.Verdict(base.ERROR, f"not judged: the check crashed: {type(exc).__name__}: {exc}")
        red = self.config.stash[_KEY].redactor
        record = {**claim.model_dump(), **red.data(verdict.to_json()), "started_at": started, "finished_at": time.time()}
        self.user_properties.append(("verdict", str(verdict.status)))
        self.user_properties.append((RECORD, json.dumps(record)))
        status = Status(verdict.status)
        if status in (Status.FAIL, Status.ERROR, Status.SAFE, Status.PARTIAL):
            raise ClaimFailure(record)     # SAFE and PARTIAL are not passes either
        if status in (Status.UNSUPPORTED, Status.MISSING):
            pytest.skip(f"{status}: {record['reason']}")

    def repr_failure(self, excinfo, style=None):  # type: ignore[override]
        if isinstance(excinfo.value, ClaimFailure):
            r = excinfo.value.args[0]
            evidence = json.dumps(r.get("evidence"), indent=1)[:3000]
            return f"{r['id']} {r['status']}: {r['reason']}\nclaim: {r['claim']}\nevidence: {evidence}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"{self.claim.id} {self.claim.test}"
