"""The repository lane: a gateway team's own tests and coverage, joined with the team's plan.

What a repository's tests are and did, whatever the runner, becomes `TestResult`s (model.py):
id (`file::name`, or `package.Test/Subtest` for Go), category (directory or package), outcome
(passed, failed, skipped, error), duration, skip reason, failure message. The team's plan becomes
claims in its own namespace (`team:X-6.5.1`), linked to tests and judged COVERED / PARTIAL / MISSING;
those judgements are `Record`s of lane "Repository". Everything else is plain data for the reports.
Bad input files raise `harness.config.ConfigError` naming the file and the line or field; a suite
that cannot run raises `RepoRunError`. Every child process has a timeout.

One call (lane.py):
    analyse(repo, out_dir, plan=None, mapping=None, namespace="team:", known_checks=None,
            since=None, langs=None, sources=None, python=sys.executable, timeout_s=900) -> RepoLane
        runs pytest under coverage and/or go test -json -coverprofile, and joins it all.
        RepoLane: .inventory, .claims (ClaimMap or None), .matrices (list[SourceMatrix]), .lanes,
        .summary, .runs; .records() -> list[Record]; .artifacts() -> {name: plain data} for
        StreamWriter.artifact("Repository", name, data).

The parts, each usable alone:
  readers
    read_junit(path, flavor="auto") -> list[TestResult]      pytest, gotestsum/go-junit-report, jest-junit, Surefire
    parse_collect_only(text) -> Collection                   `pytest --collect-only -q` (or -qq): .ids, .counts, .errors
    read_go_json(path, text=None) -> list[TestResult]        `go test -json` events (subtests, build failures, panics)
    parse_go_list(text) -> {package: [test names]}           `go test -list .` (plain or -json)
    read_profile(path) -> {file: {block: (statements, count)}}   `go test -coverprofile`
  running a team's suite (proc.run: timeout, own process group, scrubbed environment)
    run_pytest(repo, out_dir, sources=None, paths=(), python=sys.executable, timeout_s=900, coverage=True)
        -> PytestRun(.collection, .results, .junit, .coverage_file, .rcfile, .returncode, .output)
    run_go(repo, out_dir, packages=("./...",), timeout_s=900, coverage=True)
        -> GoRun(.listing, .listed_ids, .results, .events, .profile, .returncode)
    go_available() -> bool
  what the suite holds
    inventory(repo=None, collected=(), results=(), static=None) -> Inventory
        .tests: list[TestItem] (id, file, name, category, lane, marks, claims named in source, line, result)
        .test_files() -> {category: [files]}; .to_json(): counts by category, file and lane
  the team's plan and links
    import_plan(path, namespace="team:", known_checks=None) -> list[Claim]   Markdown tables or CSV
    read_mapping(path, claims=None, namespace="team:") -> {claim id: [test ids]}   YAML
    map_claims(claims, inventory, mapping=None, coverage=None) -> ClaimMap
        .claims: list[ClaimCoverage] (status, reason, how, tests, outcomes, suggestions, lane)
        .counts() {COVERED, PARTIAL, MISSING}; .heatmap() per section; .unmapped_tests;
        .unknown_ids (ids the source names that the plan lacks); .unresolved (mapping entries
        naming no test); .to_json()
    suggest(plan_test_name, test_ids, names) -> list[Suggestion]   scored name matches (similarity.py)
  coverage
    source_matrix(data_file, repo, tests, rcfile=None) -> SourceMatrix    coverage.py data with per-test contexts
    go_matrix(profile, test_files=None, by="package") -> SourceMatrix    Go, per package (or per file)
        SourceMatrix: .modules (module, statements, missed, cover, tier, test_files, tests),
        .total, .over_mocked (findings), .executes(module), .by_tier(), .to_json()
        tiers.TIERS / tiers.thresholds(): zero 0, very low <20, low <50, moderate <75, good <100, complete 100
  reports' data
    lane_matrix(inventory, claim_map=None, repo=None, since=None) -> dict   report 000: per lane tests, added since a ref, remaining
    test_summary(inventory_or_results, by="category"|"lane") -> dict       report 004: counts, root causes, skips
    records(claim_map) -> list[Record]                                      lane "Repository", one per claim

A claim whose plan row names a harness `check` is also meant to be judged black-box: its record's
evidence carries `harness_check` and `harness_params`; scheduling that check is the runner's.
"""
from harness.repo.claims import COVERED, MISSING, PARTIAL, ClaimCoverage, ClaimMap, map_claims
from harness.repo.gocov import go_matrix, read_profile
from harness.repo.gorun import GoRun, go_available, run_go
from harness.repo.gotest import parse_go_list, read_go_json
from harness.repo.inventory import Inventory, inventory
from harness.repo.junit import read_junit
from harness.repo.lane import RepoLane, analyse
from harness.repo.lane_matrix import lane_matrix
from harness.repo.mapping import read_mapping
from harness.repo.matrix import Finding, ModuleRow, SourceMatrix
from harness.repo.model import TestItem, TestResult
from harness.repo.plan import Claim, import_plan
from harness.repo.proc import RepoRunError
from harness.repo.pycov import source_matrix
from harness.repo.pyrun import PytestRun, run_pytest
from harness.repo.pytest_collect import Collection, parse_collect_only
from harness.repo.records import LANE, records
from harness.repo.similarity import Suggestion, suggest
from harness.repo.summary import test_summary

__all__ = [
    "COVERED", "MISSING", "PARTIAL", "LANE", "Claim", "ClaimCoverage", "ClaimMap", "Collection", "Finding",
    "GoRun", "Inventory", "ModuleRow", "PytestRun", "RepoLane", "RepoRunError", "SourceMatrix", "Suggestion",
    "TestItem", "TestResult", "analyse", "go_available", "go_matrix", "import_plan", "inventory", "lane_matrix",
    "map_claims", "parse_collect_only", "parse_go_list", "read_go_json", "read_junit", "read_mapping",
    "read_profile", "records", "run_go", "run_pytest", "source_matrix", "suggest", "test_summary",
]
