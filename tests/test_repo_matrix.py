"""The source-to-test matrix: coverage.py data with per-test contexts (both kinds of context name),
tiers at their boundaries, the over-mocking finding, and Go cover profiles."""
from __future__ import annotations

import pytest
from coverage import CoverageData

from harness.config import ConfigError
from harness.repo import go_matrix, read_profile, source_matrix
from harness.repo import tiers

ROUTER = "def a():\n    return 1\n\n\ndef b():\n    return 2\n"          # statements on lines 1, 2, 5, 6
TELEMETRY = "def emit():\n    return 3\n"                              # 1, 2
TESTS = ["tests/unit/test_router.py::test_a", "tests/unit/test_router.py::TestB::test_b[1]",
         "tests/unit/test_router.py::TestB::test_b[2]", "tests/unit/test_telemetry.py::test_emit"]


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "gw").mkdir(parents=True)
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "gw" / "router.py").write_text(ROUTER)
    (root / "gw" / "telemetry.py").write_text(TELEMETRY)
    (root / "gw" / "unused.py").write_text("X = 1\nY = 2\n")
    (root / "tests" / "unit" / "test_router.py").write_text("def test_a():\n    pass\n")
    (tmp_path / "elsewhere.py").write_text("Z = 1\n")
    return root


def _data(repo, lines_by_context, touched=()):
    path = repo.parent / ".coverage"
    data = CoverageData(basename=str(path))
    for context, lines in lines_by_context.items():
        data.set_context(context)
        data.add_lines({str(repo / f if not f.startswith("/") else f): ls for f, ls in lines.items()})
    data.touch_files([str(repo / f) for f in touched])
    data.write()
    return path


def test_modules_with_statements_missed_cover_tier_and_the_tests_that_execute_them(repo):
    path = _data(repo, {
        "": {"gw/router.py": [1, 5], "gw/telemetry.py": [1], "tests/unit/test_router.py": [1, 2],
             str(repo.parent / "elsewhere.py"): [1]},
        "test_router.test_a": {"gw/router.py": [2]},                              # coverage's test_function
        "tests/unit/test_router.py::TestB::test_b[2]|run": {"gw/router.py": [2]},  # pytest-cov's test context
        "helpers.test_like_helper": {"gw/router.py": [2]},                         # names no test of the suite
    }, touched=["gw/unused.py"])
    m = source_matrix(path, repo, TESTS)
    rows = {r["module"]: r for r in m.to_json()["modules"]}
    assert list(rows) == ["gw/router.py", "gw/telemetry.py", "gw/unused.py"]   # no test file, nothing outside
    assert rows["gw/router.py"] == {"module": "gw/router.py", "statements": 4, "missed": 1, "cover": 75.0,
                                    "tier": "good", "test_files": ["tests/unit/test_router.py"], "tests": 2}
    assert rows["gw/telemetry.py"] == {"module": "gw/telemetry.py", "statements": 2, "missed": 1, "cover": 50.0,
                                       "tier": "moderate", "test_files": [], "tests": 0}
    assert (rows["gw/unused.py"]["cover"], rows["gw/unused.py"]["tier"]) == (0.0, "zero")
    assert m.executes("gw.router") == {"tests/unit/test_router.py::test_a", "tests/unit/test_router.py::TestB::test_b"}
    assert m.unattributed == ["helpers.test_like_helper"]
    total = m.to_json()["total"]
    assert (total["statements"], total["missed"], total["cover"]) == (8, 4, 50.0)


def test_a_test_file_named_for_a_module_that_runs_none_of_its_lines_is_over_mocked(repo):
    # telemetry.py is imported (line 1 runs outside any test), but test_telemetry.py never calls into it
    path = _data(repo, {"": {"gw/telemetry.py": [1], "gw/router.py": [1, 5]},
                        "test_telemetry.test_emit": {"gw/router.py": [2]},
                        "test_router.test_a": {"gw/router.py": [6]}})
    m = source_matrix(path, repo, TESTS)
    assert [(f.test_file, f.module) for f in m.over_mocked] == [("tests/unit/test_telemetry.py", "gw/telemetry.py")]
    assert "1 test(s) in tests/unit/test_telemetry.py execute none of gw/telemetry.py's 2 statements" in m.over_mocked[0].reason


def test_a_test_file_that_does_run_its_module_is_not_a_finding(repo):
    path = _data(repo, {"test_telemetry.test_emit": {"gw/telemetry.py": [1, 2]}, "test_router.test_a": {"gw/router.py": [1]}})
    assert source_matrix(path, repo, TESTS).over_mocked == []


def test_without_contexts_test_files_and_findings_are_unknown_not_empty(repo):
    path = _data(repo, {"": {"gw/telemetry.py": [1], "gw/router.py": [1, 2]}})
    m = source_matrix(path, repo, TESTS)
    assert m.contexts is False
    assert {r.module: r.test_files for r in m.modules} == {"gw/router.py": None, "gw/telemetry.py": None}
    assert m.over_mocked == [] and m.executes("gw/router.py") is None


def test_not_coverage_data_is_a_config_error(repo, tmp_path):
    bogus = tmp_path / "bogus.coverage"
    bogus.write_text("not a database")
    with pytest.raises(ConfigError, match="bogus.coverage: not coverage.py data"):
        source_matrix(bogus, repo, TESTS)


@pytest.mark.parametrize("statements, missed, tier", [
    (10, 10, "zero"), (100, 99, "very low"), (100, 81, "very low"), (100, 80, "low"), (100, 51, "low"),
    (100, 50, "moderate"), (100, 26, "moderate"), (100, 25, "good"), (100, 1, "good"), (100, 0, "complete"),
    (0, 0, "complete"),
])
def test_tier_boundaries(statements, missed, tier):
    assert tiers.tier(statements, missed) == tier


PROFILE = """mode: set
example.com/gw/router/router.go:9.76,11.30 2 1
example.com/gw/router/router.go:32.2,32.31 1 0
example.com/gw/router/names.go:3.1,4.2 1 1
example.com/gw/telemetry/telemetry.go:16.38,18.16 2 0
example.com/gw/telemetry/telemetry.go:21.2,22.12 2 0
example.com/gw/refunds/refunds.go:5.85,6.18 1 0
mode: set
example.com/gw/router/router.go:32.2,32.31 1 1
"""


def test_go_profile_per_package_merges_repeated_blocks_and_finds_untouched_tested_packages(tmp_path):
    path = tmp_path / "cover.out"
    path.write_text(PROFILE)
    tests = {"example.com/gw/router": ["router/router_test.go"], "example.com/gw/telemetry": ["telemetry/telemetry_test.go"]}
    m = go_matrix(path, tests)
    rows = {r.module: (r.statements, r.missed, r.cover, r.tier, r.test_files) for r in m.modules}
    assert rows == {  # the block listed twice counts once, covered by its second listing
        "example.com/gw/refunds": (1, 1, 0.0, "zero", []),
        "example.com/gw/router": (4, 0, 100.0, "complete", ["router/router_test.go"]),
        "example.com/gw/telemetry": (4, 4, 0.0, "zero", ["telemetry/telemetry_test.go"])}
    # refunds has no tests: zero coverage, but nothing over-mocked
    assert [(f.module, f.test_file) for f in m.over_mocked] == [("example.com/gw/telemetry", "telemetry/telemetry_test.go")]
    by_file = {r.module: r.statements for r in go_matrix(path, tests, by="file").modules}
    assert by_file["example.com/gw/router/names.go"] == 1 and len(by_file) == 4


@pytest.mark.parametrize("text, error", [
    ("example.com/a/a.go:1.1,2.2 1 1\n", r"cover\.out:1: not a Go coverage profile"),
    ("mode: set\nexample.com/a/a.go:1.1,2.2 one 1\n", r"cover\.out:2: not a coverage block"),
])
def test_malformed_go_profile_names_the_line(tmp_path, text, error):
    path = tmp_path / "cover.out"
    path.write_text(text)
    with pytest.raises(ConfigError, match=error):
        read_profile(path)
