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
from harness.report.build import write_reports
from harness.secrets import Redactor
from harness.world.processes import StartError
from harness.world.world import WORLD_ENV, World

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INFRA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


@dataclass
class RunOptions:
    config: Optional[Path]
    out: Path
    workers: str = "auto"
    only: tuple[str, ...] = ()
    matrices: Path = catalog.MATRICES
    verbose: bool = True


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
                pytest_rc = pytest.main(args)
            finally:
                os.environ.pop(WORLD_ENV, None)
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
    results["target"] = {"name": cfg.target.name, "config": str(cfg_path),
                         "started_by_harness": cfg.target.start is not None}
    results["catalog"] = [c.model_dump() for c in claims]
    results_path.write_text(json.dumps(redactor.data(results), indent=1))
    summary = write_reports(results, opts.out)
    print("harness: " + ", ".join(f"{k} {v}" for k, v in summary.items() if v))
    print(f"harness: report: {opts.out / 'report.md'}, {opts.out / 'report.html'}, {junit_path}")
    failed = summary.get("FAIL", 0) + summary.get("ERROR", 0)
    return EXIT_FINDINGS if failed else EXIT_OK

