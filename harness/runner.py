"""`harness run`: bring up the world, run the claim catalog through pytest, write the reports."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from harness import catalog
from harness.checks import base
from harness.config import load, resolve_key
from harness.report import junit
from harness.report.build import write_reports
from harness.secrets import Redactor
from harness.world import processes
from harness.world.processes import StartError
from harness.world.world import WORLD_ENV, World

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INFRA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
LOAD_PREFIX = "CM-21"   # the load lane's claims (stream buffering, the gates)


@dataclass
class RunOptions:
    config: Optional[Path]
    out: Path
    workers: str = "auto"
    only: tuple[str, ...] = ()
    matrices: Path = catalog.MATRICES
    verbose: bool = True
    load: bool = True       # run the load lane when harness.yaml has `load:` (and --only does not leave it out)
    smoke: bool = True      # run the smoke matrix when harness.yaml has `smoke:` (with --only: only `--only smoke`)


def run(opts: RunOptions) -> int:
    cfg, cfg_path = load(opts.config)
    claims = catalog.load_all(opts.matrices, known_checks=set(base.load_all()))
    key = resolve_key(cfg.target.auth, str(cfg_path))
    redactor = Redactor([key] if key else [])
    opts.out.mkdir(parents=True, exist_ok=True)
    results_path, junit_path = opts.out / "results.json", opts.out / "junit.xml"
    for stale in (results_path, junit_path):
        stale.unlink(missing_ok=True)
    only = tuple(opts.only) or tuple(cfg.claims)
    profiles, load_records, load_summaries = [], [], []
    if cfg.load and opts.load and (not only or any(LOAD_PREFIX.startswith(o) or o.startswith(LOAD_PREFIX) for o in only)):
        from harness.load.run import load_profile
        profiles = [load_profile(n) for n in cfg.load.names]   # a bad profile stops the run before anything starts
    matrix = None
    if cfg.smoke and opts.smoke and (not only or "smoke" in only):
        from harness.smoke.matrix import load_matrix
        matrix = load_matrix(cfg.smoke.matrix)      # a bad matrix stops the run before anything starts
        only = tuple(o for o in only if o != "smoke") or (("-",) if only else ())   # "-": no claim matches
    print(f"harness: target {cfg.target.name} ({cfg_path}), {len(claims)} claims, output in {opts.out}/", flush=True)
    print("harness: starting mock providers and the gateway ...", flush=True)
    try:
        with World(cfg, cfg_path, key, redactor, log_dir=opts.out / "logs") as world:
            assert world.info is not None
            mocks = ", ".join(f"{n} {p['url']}" + (" (refuses connections)" if p.get("refuses_connections") else "")
                              for n, p in world.info.providers.items())
            print(f"harness: mock providers (pid {world.pids.get('mock-providers')}): {mocks}", flush=True)
            print(f"harness: gateway ready at {world.info.gateway_url} "
                  f"(pid {world.pids.get('gateway', 'external')})", flush=True)
            os.environ[WORLD_ENV] = str(world.info_path)
            try:
                args = [*map(str, catalog.claim_dirs(opts.matrices)), "-c", str(Path(__file__).parent / "claims.ini"),
                        "--rootdir", str(opts.matrices), "-p", "harness.pytest_plugin",
                        "--harness-results", str(results_path), "--junitxml", str(junit_path),
                        "-rfE", "--tb=short", "-v" if opts.verbose else "-q"]
                if opts.workers not in ("0", "1"):
                    args += ["-n", opts.workers, "--dist", "loadgroup"]
                for o in only:
                    args += ["--harness-only", o]
                try:
                    pytest_rc = pytest.main(args)
                except Exception:
                    # pytest's own interrupt reporting can crash when the signal lands mid-frame
                    # (a traceback entry without a line number): still an interrupt, not a bug of ours.
                    if processes.interrupted():
                        raise KeyboardInterrupt from None
                    raise
            finally:
                os.environ.pop(WORLD_ENV, None)
            if profiles and pytest_rc != pytest.ExitCode.INTERRUPTED:
                # Last, alone: load would disturb timing-sensitive claims, and they would disturb it.
                from harness.load.claims import combine
                per_profile = []
                for profile in profiles:
                    records, summary = _load_lane(cfg, world, profile, key, redactor, opts.out)
                    per_profile.append(records)
                    load_summaries += [summary] if summary else []
                load_records = combine(per_profile)
    except StartError as exc:
        print(f"harness: error: {redactor.text(str(exc))}", file=sys.stderr)
        return EXIT_INFRA
    if pytest_rc == pytest.ExitCode.INTERRUPTED:
        return EXIT_INTERRUPTED
    if not results_path.exists():
        print(f"harness: error: the claim run wrote no results (pytest exit {int(pytest_rc)})", file=sys.stderr)
        return EXIT_INFRA
    if junit_path.exists():  # belt and braces: no key may survive in any file we leave behind
        junit_path.write_text(redactor.text(junit_path.read_text()))
    results = json.loads(results_path.read_text())
    if load_records:
        results["claims"] += load_records
        if load_summaries:
            results["load"] = load_summaries   # one per profile
        junit.append(junit_path, "load", load_records)
        print("harness: load lane: " + ", ".join(f"{r['id']} {r['status']}" for r in load_records), flush=True)
    smoke_failed = False
    if matrix is not None:
        smoke_failed = _smoke_lane(cfg, cfg_path, matrix, opts.out, results, junit_path)
    results["target"] = {"name": cfg.target.name, "config": str(cfg_path),
                         "started_by_harness": cfg.target.start is not None}
    results["catalog"] = [c.model_dump() for c in claims] + [
        {k: v for k, v in r.items() if k not in ("status", "reason", "evidence", "duration_s")}
        for r in results["claims"] if r.get("lane") == "Load"]
    results_path.write_text(json.dumps(redactor.data(results), indent=1))
    summary = write_reports(results, opts.out)
    print("harness: " + ", ".join(f"{k} {v}" for k, v in summary.items() if v))
    print(f"harness: report: {opts.out / 'report.md'}, {opts.out / 'report.html'}, {junit_path}")
    failed = summary.get("FAIL", 0) + summary.get("ERROR", 0)
    return EXIT_FINDINGS if failed or smoke_failed else EXIT_OK


def _smoke_lane(cfg, cfg_path: Path, matrix, out: Path, results: dict, junit_path: Path) -> bool:
    """The smoke matrix behind a gateway of its own; into results["smoke"] and junit.xml. True if red."""
    from harness.smoke import lane as smoke
    from harness.smoke.report import junit_suite, write_outputs
    where = out / "smoke"
    where.mkdir(parents=True, exist_ok=True)
    try:
        result, _ = smoke.measure(cfg, cfg_path, matrix, where, progress=False)
    except StartError as exc:
        print(f"harness: smoke matrix: error: {exc}", file=sys.stderr)
        results["smoke"] = {"error": str(exc)}
        return True
    write_outputs(result, where)
    junit.append_suite(junit_path, junit_suite(result))
    counts = smoke.summary(result)
    results["smoke"] = {**result, "files": [str((where / f).relative_to(out)) for f in ("smoke.html", "smoke.md", "smoke.json")]}
    print("harness: smoke matrix: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), flush=True)
    return bool(counts.get("FAIL") or counts.get("ERROR"))



def _load_lane(cfg, world: World, profile, key: Optional[str], redactor: Redactor, out: Path):
    """The load profile through the gateway and straight at the provider; its verdicts as claims."""
    import subprocess
    import time

    from harness.load import claims as load_claims
    from harness.load.lane import auth_value, for_report, measure, write_outputs
    assert cfg.load is not None
    where = out / "load" / profile.name
    print(f"harness: load lane: profile {profile.name} ({profile.users} {profile.user} users, "
          f"{profile.duration_s:g}s per run) ...", flush=True)
    t0 = time.monotonic()
    try:
        result = measure(cfg, world, profile, auth_value(cfg, key), cfg.load.workers, cfg.load.direct, progress=False)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:   # the generator broke: say so, lose nothing else
        why = redactor.text(f"the load run failed: {type(exc).__name__}: {exc}")
        print(f"harness: load lane: {why}", file=sys.stderr, flush=True)
        return load_claims.errors(cfg, profile.name, why), None
    write_outputs(result, where, redactor)
    files = [str((where / f).relative_to(out)) for f in ("load.html", "load.json", "load.csv")]   # relative: the report moves with them
    return load_claims.records(result, time.monotonic() - t0), redactor.data(for_report(result, files))
