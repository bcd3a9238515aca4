"""Claims to tests: markers read statically (Python ast, Go comments and subtest names), the
mapping file, name similarity; and the status each claim gets, with its reason."""
from __future__ import annotations

import textwrap

from harness.repo import import_plan, inventory, map_claims, suggest
from harness.repo.matrix import ModuleRow, SourceMatrix
from harness.repo.model import TestItem, TestResult
from harness.repo.static_go import scan_go
from harness.repo.static_py import scan_python

PY = textwrap.dedent('''
    import pytest
    from pytest import mark

    pytestmark = [pytest.mark.integration]


    @pytest.mark.claim("A-1")
    def test_one():
        pass


    @mark.claim("A-2", "A-3")
    @pytest.mark.parametrize("x", [1, 2])
    async def test_two(x):
        pass


    @pytest.mark.claim(id="A-4")
    class TestGroup:
        pytestmark = pytest.mark.slow

        def test_inner(self):
            pass

        def helper(self):
            pass


    def helper_test():
        pass
''')

GO = textwrap.dedent('''\
    //go:build integration

    package router

    import "testing"

    // claim: G-1, G-2
    // TestPick picks.
    func TestPick(t *testing.T) {
    	t.Run("G-3 cheapest wins", func(t *testing.T) {})
    	t.Run("plain", func(t *testing.T) {})
    }

    // claim: G-9
    var unrelated = 1

    func TestOther(t *testing.T) {
    	// claim: G-4
    }

    func BenchmarkPick(b *testing.B) {}

    func TestMain(m *testing.M) {}
''')


def test_python_markers_on_functions_classes_and_modules_are_read_without_importing():
    items = {t.id: t for t in scan_python("tests/integration/test_x.py", PY)}
    assert list(items) == ["tests/integration/test_x.py::test_one", "tests/integration/test_x.py::test_two",
                           "tests/integration/test_x.py::TestGroup::test_inner"]
    assert items["tests/integration/test_x.py::test_one"].claims == ["A-1"]
    assert items["tests/integration/test_x.py::test_two"].claims == ["A-2", "A-3"]
    inner = items["tests/integration/test_x.py::TestGroup::test_inner"]
    assert (inner.claims, inner.marks, inner.line) == (["A-4"], ["integration", "slow"], 23)
    assert scan_python("tests/test_broken.py", "def test_(:\n") == []


def test_go_claim_comments_subtests_build_tags_and_which_function_a_comment_belongs_to():
    items = {t.id: t for t in scan_go("router/router_test.go", GO, "example.com/gw/router")}
    p = "example.com/gw/router."
    assert list(items) == [p + "TestPick", p + "TestPick/G-3_cheapest_wins", p + "TestPick/plain",
                           p + "TestOther", p + "BenchmarkPick"]
    assert items[p + "TestPick"].claims == ["G-1", "G-2"]
    assert items[p + "TestOther"].claims == ["G-4"]           # inside the body; G-9 belonged to the var
    assert items[p + "TestPick"].marks == ["integration"]
    assert items[p + "TestPick/G-3_cheapest_wins"].line == 10


def test_suggestions_compare_names_in_one_case_and_keep_the_best_three():
    names = {"p.TestBreakerOpensAfterThreeFailures": "TestBreakerOpensAfterThreeFailures",
             "t.py::test_breaker_starts_closed": "test_breaker_starts_closed",
             "t.py::test_unrelated_thing": "test_unrelated_thing"}
    got = suggest("test_breaker_opens_after_three_failures", sorted(names), names)
    assert [(s.test, s.score) for s in got] == [("p.TestBreakerOpensAfterThreeFailures", 1.0)]
    assert suggest("", sorted(names), names) == []
    acronym = {"p.TestHTTPServerStarts": "TestHTTPServerStarts"}
    assert [s.score for s in suggest("test_http_server_starts", list(acronym), acronym)] == [1.0]
    near = suggest("test_breaker_reopens_on_failed_probe", sorted(names), names)
    assert near and 0.6 <= near[0].score < 0.85


def _result(test_id, outcome, *, message="", skip="", category="tests"):
    name = test_id.split("::", 1)[1] if "::" in test_id else test_id.rsplit(".", 1)[1]
    return TestResult(test_id, name, test_id.split("::")[0] if "::" in test_id else "", category, outcome,
                      message=message, skip_reason=skip)


def _plan(tmp_path, rows, header="| id | test | module |\n|---|---|---|\n"):
    path = tmp_path / "plan.md"
    path.write_text(header + "".join(rows))
    return import_plan(path)


def _static(test_id, claims=(), file=None):
    file = file or test_id.split("::")[0]
    return TestItem(test_id, file, test_id.split("::", 1)[-1], "tests", claims=list(claims))


def test_status_for_each_way_a_claim_is_or_is_not_tested(tmp_path):
    claims = _plan(tmp_path, [
        "| A-1 | test_covered | |\n", "| A-2 | test_x | |\n", "| A-3 | test_x | |\n", "| A-4 | test_x | |\n",
        "| A-5 | test_x | |\n", "| A-6 | test_exactly_this_name | |\n", "| A-7 | test_completely_different | |\n",
        "| A-8 | test_x | |\n", "| A-9 | test_x | |\n", "| A-10 | test_x | |\n"])
    static = [_static("t.py::test_a", ["A-1"]), _static("t.py::test_b", ["A-2"]), _static("t.py::test_c", ["A-3"]),
              _static("t.py::test_d", ["A-4"]), _static("t.py::test_exactly_this_name"),
              _static("t.py::TestK::test_k1"), _static("t.py::TestK::test_k2"), _static("t.py::test_p"),
              _static("t.py::test_orphan", ["Z-1"])]
    results = [_result("t.py::test_a", "passed"), _result("t.py::test_b", "failed", message="boom"),
               _result("t.py::test_c", "skipped", skip="needs redis"),
               _result("t.py::test_exactly_this_name", "passed"),
               _result("t.py::TestK::test_k1", "passed"), _result("t.py::TestK::test_k2", "skipped", skip="later"),
               _result("t.py::test_p[1]", "passed"), _result("t.py::test_p[2]", "failed", message="p2 broke"),
               _result("t.py::test_orphan", "passed")]
    inv = inventory(collected=[*(r.id for r in results), "t.py::test_d"], results=results, static=static)
    mapping = {"team:A-5": ["t.py::nope"], "team:A-8": ["t.py::TestK"], "team:A-9": ["t.py::test_p"],
               "team:A-10": ["t.py::test_orphan"]}
    got = map_claims(claims, inv, mapping)
    status = {c.claim.local_id: (c.status, c.how, c.reason) for c in got.claims}
    assert status["A-1"] == ("COVERED", "marker", "marker: t.py::test_a passed")
    assert status["A-2"] == ("PARTIAL", "marker", "mapped test failing: t.py::test_b: boom")
    assert status["A-3"] == ("PARTIAL", "marker", "mapped test skipped: t.py::test_c: needs redis")
    assert status["A-4"] == ("PARTIAL", "marker", "mapped test never ran: t.py::test_d")
    assert status["A-5"] == ("MISSING", None, "mapped tests not found in the suite: t.py::nope")
    assert status["A-6"][:2] == ("PARTIAL", "name") and status["A-6"][2].startswith(
        "mapped only by name (1.00): t.py::test_exactly_this_name (passed)")
    assert status["A-7"] == ("MISSING", None, "no test")
    assert status["A-8"] == ("COVERED", "mapping", "mapping: t.py::TestK::test_k1 passed (1 more skipped)")
    assert status["A-9"] == ("PARTIAL", "mapping", "mapped test failing: t.py::test_p[2]: p2 broke")
    assert status["A-10"][0] == "COVERED"
    assert got.counts() == {"COVERED": 3, "PARTIAL": 5, "MISSING": 2}
    assert got.unknown_ids == {"Z-1": ["t.py::test_orphan"]}
    assert got.unresolved == {"team:A-5": ["t.py::nope"]}
    assert got.unmapped_tests == []


def test_a_claim_about_a_module_its_passing_test_never_executes_is_partial(tmp_path):
    claims = _plan(tmp_path, ["| A-1 | t | gw/telemetry.py |\n", "| A-2 | t | gw.router |\n",
                              "| A-3 | t | gw/unknown.py |\n"])
    static = [_static("t.py::test_a", ["A-1"]), _static("t.py::test_b", ["A-2"]), _static("t.py::test_c", ["A-3"])]
    inv = inventory(results=[_result(t.id, "passed") for t in static], static=static)
    rows = [ModuleRow("gw/telemetry.py", 5, 5, []), ModuleRow("gw/router.py", 10, 1, ["t.py"])]
    with_contexts = SourceMatrix("python", rows, True, executing={"gw/telemetry.py": set(),
                                                                  "gw/router.py": {"t.py::test_b"}})
    got = {c.claim.local_id: c for c in map_claims(claims, inv, coverage=with_contexts).claims}
    assert (got["A-1"].status, got["A-1"].reason) == ("PARTIAL", "the mapped test never executes gw/telemetry.py: t.py::test_a")
    assert got["A-2"].status == "COVERED"
    assert got["A-3"].status == "COVERED"         # a module coverage did not measure cannot be judged
    without = SourceMatrix("python", rows, False)
    assert map_claims(claims, inv, coverage=without).claims[0].status == "COVERED"


def test_go_subtest_names_and_comments_link_claims_but_not_a_longer_id(tmp_path):
    claims = _plan(tmp_path, ["| G-1 | t | |\n", "| G-1.1 | t | |\n", "| G-4 | t | |\n"])
    p = "example.com/gw/router"
    results = [_result(f"{p}.TestPick/G-1.10_other", "passed", category=p),
               _result(f"{p}.TestPick/G-1_cheapest", "passed", category=p),
               _result(f"{p}.TestOther", "failed", message="got a", category=p)]
    static = [TestItem(f"{p}.TestOther", "router/router_test.go", "TestOther", p, claims=["G-4"])]
    got = {c.claim.local_id: c for c in map_claims(claims, inventory(results=results, static=static)).claims}
    assert (got["G-1"].status, got["G-1"].tests) == ("COVERED", [f"{p}.TestPick/G-1_cheapest"])
    assert got["G-1.1"].status == "MISSING"          # G-1.10 is another claim
    assert (got["G-4"].status, got["G-4"].reason) == ("PARTIAL", f"mapped test failing: {p}.TestOther: got a")


def test_claim_lane_comes_from_plan_then_tests_then_section_then_unit(tmp_path):
    path = tmp_path / "plan.md"
    path.write_text("## Chaos\n\n| id | test | lane |\n|---|---|---|\n| A-1 | t | perf |\n| A-2 | t | |\n"
                    "| A-3 | t | |\n\n## Billing\n\n| id | test |\n|---|---|\n| B-1 | t |\n")
    claims = import_plan(path)
    static = [TestItem("tests/integration/test_i.py::test_i", "tests/integration/test_i.py", "test_i",
                       "tests/integration", claims=["A-2"])]
    got = {c.claim.local_id: c.lane for c in map_claims(claims, inventory(static=static)).claims}
    assert got == {"A-1": "Perf", "A-2": "Integration", "A-3": "Chaos", "B-1": "Unit"}


def test_heatmap_counts_per_section_in_plan_order(tmp_path):
    path = tmp_path / "plan.md"
    path.write_text("## One\n\n| id | test |\n|---|---|\n| A-1 | t |\n| A-2 | t |\n\n"
                    "## Two\n\n| id | test |\n|---|---|\n| B-1 | t |\n")
    static = [_static("t.py::test_a", ["A-1"])]
    got = map_claims(import_plan(path), inventory(results=[_result("t.py::test_a", "passed")], static=static))
    assert got.heatmap() == [
        {"section": "One", "total": 2, "covered": 1, "partial": 0, "missing": 1, "coverage": 50.0},
        {"section": "Two", "total": 1, "covered": 0, "partial": 0, "missing": 1, "coverage": 0.0}]
