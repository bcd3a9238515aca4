"""The `harness` command."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional

from harness import __version__, catalog
from harness.config import EMBEDDED_DEFAULT, ConfigError, load

DESCRIPTION = """\
Test harness for LLM API gateways: conformance claims, provider smoke, chaos and load,
checked black-box against a running gateway whose upstream providers are the harness's mocks.

With no harness.yaml (and no --config), the target is the embedded default: mock OpenAI- and
Anthropic-style providers behind a LiteLLM proxy that the harness starts and stops itself.

Exit codes: 0 every judged claim conforms; 1 a finding (FAIL, SAFE, PARTIAL) or a claim not
judged (ERROR), unless waived; 2 bad usage or config; 3 the world could not be started;
70 an internal error of the harness (--debug shows its traceback); 130 interrupted (a partial
report is written)."""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r}: give between 0 and 86400 seconds")
    return value


def _config_path(arg: Optional[str], target: Optional[str] = None) -> Optional[Path]:
    if arg and target:
        raise ConfigError("give --config FILE or --target NAME, not both")
    if target:
        from harness.config import target_path
        return target_path(target)
    if arg:
        return Path(arg)
    local = Path("harness.yaml")
    return local if local.exists() else None


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import RunOptions, run
    from harness.world.processes import install_signal_handlers
    install_signal_handlers()
    return run(RunOptions(config=_config_path(args.config, getattr(args, "target", None)), out=Path(args.out), workers=args.workers,
                          only=tuple(args.only or ()), lanes=tuple(args.lane or ()), keyword=args.keyword or "",
                          matrices=Path(args.matrices), verbose=args.verbose, debug=args.debug,
                          load=not args.no_load, smoke=not args.no_smoke,
                          history=Path(args.history) if args.history else None,
                          waivers=Path(args.waivers) if args.waivers else None,
                          gateway_coverage=args.gateway_coverage, budget_s=args.budget,
                          check_budget_s=args.check_budget, argv=sys.argv[1:]))


def cmd_load(args: argparse.Namespace) -> int:
    from harness.load.lane import run_lane
    from harness.load.run import load_profile
    from harness.world.processes import install_signal_handlers
    install_signal_handlers()
    cfg, path = load(_config_path(args.config, getattr(args, "target", None)))
    return run_lane(cfg, path, load_profile(args.profile), Path(args.out), workers=args.workers,
                    direct=not args.no_direct, progress=not args.quiet)


def cmd_repo(args: argparse.Namespace) -> int:
    from harness.config import RepoCfg
    from harness.runner import RunOptions, run
    from harness.world.processes import install_signal_handlers
    install_signal_handlers()
    absolute = lambda p: str(Path(p).resolve()) if p else None   # noqa: E731 - paths given here are the caller's
    try:
        spec = RepoCfg(path=absolute(args.path), plan=absolute(args.plan), mapping=absolute(args.mapping),
                       namespace=args.namespace, since=args.since, langs=args.lang, sources=args.sources,
                       timeout_s=args.timeout)
    except ValueError as exc:
        raise ConfigError(f"harness repo: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    return run(RunOptions(config=_config_path(args.config, getattr(args, "target", None)), out=Path(args.out), lanes=("Repository",), repo=spec,
                          verbose=args.verbose, debug=args.debug, load=False, smoke=False,
                          history=Path(args.history) if args.history else None, argv=sys.argv[1:]))


def _print_routes(rows: list[dict], as_json: bool) -> int:
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        chain = f"  fallbacks: {', '.join(r['fallbacks'])}" if r["fallbacks"] else ""
        print(f"{r['route']:<32} -> {r['kind']:<9} {r['address']:<30} model {r['upstream_model']:<24} "
              f"key {r['key']:<4} {r['api']}{chain}")
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from harness.smoke.lane import run_lane
    from harness.smoke.matrix import load_matrix, route_table
    from harness.world.processes import install_signal_handlers
    if args.routes:
        return _print_routes(route_table(load_matrix(args.matrix)), args.json)
    if args.json:
        raise ConfigError("--json goes with --routes (the matrix run writes smoke.json anyway)")
    install_signal_handlers()
    cfg, path = load(_config_path(args.config, getattr(args, "target", None)))
    return run_lane(cfg, path, load_matrix(args.matrix), Path(args.out), omit=tuple(args.omit or ()),
                    progress=not args.quiet)


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.checks.base import load_all
    cfg, path = load(_config_path(args.config, getattr(args, "target", None)))
    claims = catalog.load_all(Path(args.matrices), known_checks=set(load_all()))
    print(f"{path}: ok (target {cfg.target.name}, {len(cfg.providers)} providers, {len(cfg.models)} models)")
    print(f"{args.matrices}: ok ({len(claims)} claims, {sum(1 for c in claims if c.check)} with a check)")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    """The built-in targets: each an ordinary harness.yaml in harness/targets/."""
    from harness.config import builtin_targets
    from harness.world.gateway import binary, installed, unavailable
    rows = []
    for name, path in builtin_targets().items():
        cfg, _ = load(path)
        exe = binary(cfg)
        found = installed(cfg)
        rows.append({"name": name, "gateway": cfg.target.name, "file": str(path),
                     "installed": bool(found) if exe else None, "binary": found or exe,
                     "install": cfg.target.install, "unavailable": None if found else unavailable(cfg)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'NAME':<12} {'GATEWAY':<16} {'INSTALLED':<10} INSTALL")
    for r in rows:
        state = {True: "yes", False: "no", None: "running"}[r["installed"]]
        print(f"{r['name']:<12} {r['gateway']:<16} {state:<10} {r['install'] or '-'}")
        if r["unavailable"]:
            print(f"{'':<40} the last setup could not install it: {r['unavailable']}")
    print("\nharness run --target NAME (also validate, smoke, load); each is a harness.yaml in "
          f"{Path(rows[0]['file']).parent if rows else 'harness/targets'}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from harness.imports import litellm
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigError(f"{out}: exists; give another -o or --force")
    harness_yaml, template, data = litellm.write(Path(args.from_litellm), out, keep_redis=args.keep_redis)
    p = data["promises"]
    print(f"{harness_yaml}: {len(data['providers'])} mock providers, {len(data['models'])} models, "
          f"{len(p.get('fallbacks', {}))} fallback chains; promises read: {', '.join(sorted(p.get('sources', {})))}")
    print(f"{template}: your LiteLLM config, pointed at the mock providers")
    print(f"next: harness run --config {harness_yaml}")
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from harness.checks.base import load_all
    claims = catalog.load_all(Path(args.matrices), known_checks=set(load_all()))
    if args.json:
        print(json.dumps([c.model_dump() for c in claims], indent=1))
        return 0
    for c in claims:
        print(f"{c.id:<12} {c.lane:<12} {c.wave} {c.risk:<12} {c.check or '(no check: MISSING)':<32} {c.test}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.outputs import write_all
    from harness.results.stream import read
    source = Path(args.source or args.results or "harness-out/results.jsonl")
    if source.suffix != ".jsonl":
        raise ConfigError(f"{source}: give the run's results stream (results.jsonl); results.json is an output of it")
    try:
        run = read(source)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    out = Path(args.out or source.parent)
    view = write_all(run, out, Path(args.history) if args.history else None, logs=source.parent / "logs")
    counts = view["counts"]
    print(f"Release gate: {view['decision']['verdict']}: {view['decision']['why']}."
          + (" (partial run)" if view["partial"] else ""))
    print(", ".join(f"{s} {counts[s]}" for s in view["order"] if counts[s]) + f" -> {out}/report.md, report.html, "
          "results.json, junit.xml")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def target_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--target", "-t", metavar="NAME",
                        help="a built-in target by name instead of --config (`harness targets` lists them)")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", "-c", metavar="FILE",
                        help=f"target definition (default: ./harness.yaml, else the embedded {EMBEDDED_DEFAULT.name})")
        target_arg(sp)
        sp.add_argument("--matrices", default=str(catalog.MATRICES), metavar="DIR",
                        help="catalog root: claims/ and chaos/ hold the claims (default: %(default)s)")

    r = sub.add_parser("run", help="start the world, check every claim, write the reports",
                       description="Starts the mock providers and the gateway (or uses the running one), "
                                   "checks the claim catalog, writes results.json, report.md, report.html and "
                                   "junit.xml, and stops everything it started, Ctrl-C included.")
    common(r)
    r.add_argument("--out", "-o", default="harness-out", metavar="DIR", help="output directory (default: %(default)s)")
    r.add_argument("--workers", "-n", default="auto", help="pytest-xdist workers: a number or 'auto' (default: %(default)s)")
    r.add_argument("--only", action="append", metavar="ID",
                   help="only records with this id or id prefix, in every lane: CM-2 (not CM-21), CM-21 (load), SMOKE "
                        "(the smoke matrix) (repeatable)")
    r.add_argument("--lane", action="append", metavar="LANE",
                   help="only this lane: Conformance, Resilience, Chaos, Load, Smoke (repeatable)")
    r.add_argument("-k", dest="keyword", metavar="TEXT", help="only records whose id, test name or claim contains TEXT")
    r.add_argument("--verbose", "-v", action="store_true", help="a line per verdict as it is reached")
    r.add_argument("--debug", action="store_true", help="show pytest's and locust's own output, and tracebacks")
    r.add_argument("--history", metavar="DIR",
                   help="keep each run here and report what changed since the previous one "
                        "(default: <out>-history beside the output directory)")
    r.add_argument("--waivers", metavar="FILE", help="known deviations with a reason and an expiry date "
                                                     "(default: harness.yaml's waivers:)")
    r.add_argument("--budget", type=_seconds, metavar="SECONDS",
                   help="the whole run's time budget: past it no claim or lane is started (each is ERROR, not judged, "
                        "with the reason); lanes already running end within their own bounds")
    r.add_argument("--check-budget", type=_seconds, metavar="SECONDS",
                   help="one check's time budget: a check still running then is stopped and not judged")
    r.add_argument("--gateway-coverage", action="store_true",
                   help="run the gateway (a Python one the harness starts: target.coverage) under coverage.py with a "
                        "context per lane and per claim; the report gets its source matrix. Claims then run one at a "
                        "time, and timings are slower than the gateway's own")
    r.add_argument("--no-load", action="store_true",
                   help="skip the load lane (the `load:` profile of harness.yaml, claims CM-21.x) at the end of the run")
    r.add_argument("--no-smoke", action="store_true",
                   help="skip the provider smoke matrix (the `smoke:` matrix of harness.yaml) at the end of the run")
    r.set_defaults(fn=cmd_run)

    ld = sub.add_parser("load", help="run a load profile through the gateway and straight at the provider",
                        description="Runs a profile from matrices/load with locust, once through the gateway and once "
                                    "straight at the mock provider, and reports percentiles (HDR), the gateway's "
                                    "overhead, stream buffering and the gates of harness.yaml (exit 1 if one fails).")
    ld.add_argument("--config", "-c", metavar="FILE", help="target definition (default: ./harness.yaml, else the embedded one)")
    target_arg(ld)
    ld.add_argument("--profile", "-p", default="smoke", help="a name in matrices/load or a YAML path (default: %(default)s)")
    ld.add_argument("--workers", "-w", type=int, default=0, help="locust worker processes (one per core); 0: one process")
    ld.add_argument("--out", "-o", default="harness-out/load", metavar="DIR", help="output directory (default: %(default)s)")
    ld.add_argument("--no-direct", action="store_true", help="skip the run straight at the provider (no overhead figures)")
    ld.add_argument("--quiet", "-q", action="store_true", help="no live stats table while the load runs")
    ld.set_defaults(fn=cmd_load)

    sm = sub.add_parser("smoke", help="the provider smoke matrix: every route x protocol x streaming",
                        description="Starts the matrix's providers as mock providers (OpenAI, Anthropic, Gemini, Ollama "
                                    "shapes) behind the gateway with a generated config, sends one real request per "
                                    "cell (route x client protocol x streaming), checks what the provider saw and what "
                                    "the client got, cross-checks /v1/models, and writes smoke.md, smoke.html, "
                                    "smoke.json and junit.xml (one case per cell). Exit 1 if a cell is red.")
    sm.add_argument("--config", "-c", metavar="FILE", help="target definition (default: ./harness.yaml, else the embedded one)")
    target_arg(sm)
    sm.add_argument("--matrix", "-m", default="default", help="a name in matrices/smoke or a YAML path (default: %(default)s)")
    sm.add_argument("--out", "-o", default="harness-out/smoke", metavar="DIR", help="output directory (default: %(default)s)")
    sm.add_argument("--omit", action="append", metavar="ROUTE",
                    help="leave this route out of the generated gateway config (shows what a broken config looks like)")
    sm.add_argument("--quiet", "-q", action="store_true", help="no line per cell while it runs")
    sm.add_argument("--routes", action="store_true",
                    help="print the matrix's routes and where a gateway must send each (provider, address, upstream "
                         "model, API), to configure a gateway of your own; starts nothing")
    sm.add_argument("--json", action="store_true", help="with --routes: machine-readable")
    sm.set_defaults(fn=cmd_smoke)

    rp = sub.add_parser("repo", help="the team's own tests and coverage, mapped to its plan of claims",
                        description="Runs the repository's own test suite (pytest under coverage with a context per "
                                    "test; go test -json -coverprofile), maps the team's plan of claims (a Markdown table "
                                    "or CSV, ids in their own namespace) to its tests by marker, mapping file and name, "
                                    "and writes the report's repository sections: claims x tests (COVERED / PARTIAL / "
                                    "MISSING beside the black-box verdict), the source-to-test matrix with coverage tiers "
                                    "and over-mocked test files, the lane matrix and the test summary. The same lane runs "
                                    "in `harness run` when harness.yaml has `repo:`.")
    rp.add_argument("path", nargs="?", default=".", help="the repository (default: the current directory)")
    rp.add_argument("--plan", metavar="FILE", help="the team's plan: a Markdown table or CSV (id, test name, "
                                                   "optional section, risk, wave, check, params)")
    rp.add_argument("--mapping", metavar="FILE", help="YAML: claim id -> test ids")
    rp.add_argument("--namespace", default="team:", help="prefix of the team's claim ids (default: %(default)s)")
    rp.add_argument("--since", metavar="REF", help="a git ref: the lane matrix counts tests added since")
    rp.add_argument("--lang", action="append", choices=["python", "go"], help="only this language's suite (repeatable)")
    rp.add_argument("--sources", action="append", metavar="PKG", help="Python package to measure (repeatable)")
    rp.add_argument("--timeout", type=float, default=900, help="seconds the suite may take (default: %(default)s)")
    rp.add_argument("--config", "-c", metavar="FILE", help="harness.yaml, for the report's target name (optional)")
    rp.add_argument("--out", "-o", default="harness-out", metavar="DIR", help="output directory (default: %(default)s)")
    rp.add_argument("--history", metavar="DIR", help="keep each run here (default: <out>-history)")
    rp.add_argument("--verbose", "-v", action="store_true", help="a line per claim as it is judged")
    rp.add_argument("--debug", action="store_true", help="tracebacks")
    rp.set_defaults(fn=cmd_repo)

    v = sub.add_parser("validate", help="check harness.yaml and the claim catalog, start nothing")
    common(v)
    v.set_defaults(fn=cmd_validate)

    ini = sub.add_parser("init", help="write a harness.yaml from your own LiteLLM proxy config",
                         description="Reads a LiteLLM proxy config and writes a harness.yaml whose config template is "
                                     "that file, with every api_base pointed at a mock provider of the right shape, keys "
                                     "replaced by mock keys, Redis-backed settings made local, and the promises (fallbacks, "
                                     "retries, timeouts, cooldowns, rpm limits, cache, aliases) read from it.")
    ini.add_argument("--from-litellm", required=True, metavar="CONFIG", help="the LiteLLM proxy config (config.yaml)")
    ini.add_argument("--out", "-o", default="harness.yaml", metavar="FILE",
                     help="the harness.yaml to write; its template goes beside it (default: %(default)s)")
    ini.add_argument("--keep-redis", action="store_true", help="keep Redis-backed cache and router settings (you run Redis)")
    ini.add_argument("--force", action="store_true", help="overwrite an existing file")
    ini.set_defaults(fn=cmd_init)

    t = sub.add_parser("targets", help="list the built-in targets: gateway, installed or not, how to install it",
                       description="The built-in targets (harness/targets/*.yaml), each an ordinary harness.yaml: "
                                   "run one with `harness run --target NAME`. A gateway that is not installed is "
                                   "installed by the project's setup (`bash ci/setup.sh --gateways`).")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(fn=cmd_targets)

    c = sub.add_parser("catalog", help="list the claims")
    common(c)
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(fn=cmd_catalog)

    rep = sub.add_parser("report", help="rebuild every output from a run's results.jsonl (an interrupted run too)",
                         description="Reads the results stream of a run (also of one that was interrupted or killed: "
                                     "such a report says it is partial) and writes report.md, report.html, results.json "
                                     "and junit.xml again.")
    rep.add_argument("results", nargs="?", help=argparse.SUPPRESS)
    rep.add_argument("--from", dest="source", metavar="FILE", help="the results.jsonl (default: harness-out/results.jsonl)")
    rep.add_argument("--out", "-o", metavar="DIR", help="output directory (default: next to the stream)")
    rep.add_argument("--history", metavar="DIR", help="compare with the runs kept here")
    rep.set_defaults(fn=cmd_report)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 2
    try:
        return args.fn(args)
    except ConfigError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; everything started was stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`harness catalog | head`): not an error of ours. Point stdout at
        # devnull so the interpreter's final flush does not complain a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:   # a bug of ours: one line, the traceback only with --debug
        if getattr(args, "debug", False) or os.environ.get("HARNESS_DEBUG"):
            raise
        print(f"harness: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
