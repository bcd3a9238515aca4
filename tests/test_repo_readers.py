"""Readers of what a repository's tests are and did: JUnit XML of several writers, pytest's
collection listing, go test -json events and go test -list. Bad files are ConfigErrors naming the
file and the line."""
from __future__ import annotations

import json

import pytest

from harness.config import ConfigError
from harness.repo import parse_collect_only, parse_go_list, read_go_json, read_junit

PYTEST_XUNIT1 = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4" time="0.2">
<testcase classname="tests.unit.test_cache" name="test_hit" file="tests/unit/test_cache.py" line="14" time="0.001"/>
<testcase classname="tests.unit.test_cache" name="test_expires" file="tests/unit/test_cache.py" line="21" time="0.002">
<failure message="AssertionError: assert 'v' is None">def test_expires():
&gt;       assert cache.get("k") is None
E       AssertionError: assert 'v' is None</failure></testcase>
<testcase classname="tests.unit.test_cache" name="test_shared" file="tests/unit/test_cache.py" line="30" time="0.000">
<skipped type="pytest.skip" message="needs a shared Redis">tests/unit/test_cache.py:31: needs a shared Redis</skipped></testcase>
<testcase classname="tests.unit.test_router.TestSplit" name="test_split[openai/gpt-4o]" file="tests/unit/test_router.py" line="22" time="0.003"/>
</testsuite></testsuites>
"""

# pytest's default (xunit2): no file attribute, the class part starts at the capitalised segment
PYTEST_XUNIT2 = """<testsuites><testsuite name="pytest" tests="2">
<testcase classname="tests.integration.test_flow.TestFailover" name="test_skips_open" time="1.5"/>
<testcase classname="test_root" name="test_alone" time="0"><error message="failed on setup with &quot;fixture 'db' not found&quot;">...</error></testcase>
</testsuite></testsuites>
"""

GOTESTSUM = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" failures="1" errors="0" time="0.5">
  <testsuite tests="4" failures="1" time="0.010" name="example.com/gw/router" timestamp="2026-01-01T00:00:00Z">
    <properties><property name="go.version" value="go1.26"></property></properties>
    <testcase classname="example.com/gw/router" name="TestPick" time="0.000"></testcase>
    <testcase classname="example.com/gw/router" name="TestPick/GO-1.1_cheapest" time="0.000"></testcase>
    <testcase classname="example.com/gw/router" name="TestFailover" time="0.010">
      <failure message="Failed" type="">=== RUN   TestFailover&#xA;    router_test.go:30: got a, want b&#xA;--- FAIL: TestFailover (0.01s)&#xA;</failure>
    </testcase>
    <testcase classname="example.com/gw/router" name="TestStream" time="0.000">
      <skipped message="=== RUN   TestStream&#xA;    router_test.go:40: needs a provider&#xA;--- SKIP: TestStream (0.00s)&#xA;"></skipped>
    </testcase>
  </testsuite>
</testsuites>
"""

JEST_JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="3" failures="1" errors="0" time="1.23">
  <testsuite name="router" errors="0" failures="1" skipped="1" timestamp="2026-01-01T00:00:00" time="0.5" tests="3">
    <testcase classname="router picks the cheapest provider" name="router picks the cheapest provider" time="0.01" file="src/__tests__/router.test.js"></testcase>
    <testcase classname="router fails over" name="router fails over" time="0.2" file="src/__tests__/router.test.js">
      <failure>Error: expect(received).toBe(expected)

Expected: "b"
Received: "a"
    at Object.&lt;anonymous&gt; (src/__tests__/router.test.js:10:5)</failure>
    </testcase>
    <testcase classname="router streams" name="router streams" time="0" file="src/__tests__/router.test.js"><skipped/></testcase>
  </testsuite>
</testsuites>
"""

SUREFIRE = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" name="com.example.gw.RouterTest" time="1,234.5" tests="3" errors="1" skipped="1" failures="0">
  <properties><property name="java.version" value="21"/></properties>
  <testcase name="picksCheapest" classname="com.example.gw.RouterTest" time="0.012"/>
  <testcase name="failsOver" classname="com.example.gw.RouterTest" time="1,200.5">
    <error message="Connection refused" type="java.net.ConnectException">java.net.ConnectException: Connection refused
	at com.example.gw.Router.call(Router.java:42)</error>
  </testcase>
  <testcase name="streams" classname="com.example.gw.RouterTest" time="0"><skipped message="needs a provider"/></testcase>
</testsuite>
"""

NESTED = """<testsuites><testsuite name="outer">
  <testsuite name="inner"><testcase classname="Inner" name="x" time="0.5"/></testsuite>
  <testcase classname="Outer" name="y"/>
</testsuite></testsuites>
"""


def _write(tmp_path, text, name="junit.xml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _by_id(results):
    return {r.id: r for r in results}


def test_pytest_junit_ids_outcomes_messages_and_times(tmp_path):
    got = _by_id(read_junit(_write(tmp_path, PYTEST_XUNIT1)))
    assert list(got) == ["tests/unit/test_cache.py::test_hit", "tests/unit/test_cache.py::test_expires",
                         "tests/unit/test_cache.py::test_shared",
                         "tests/unit/test_router.py::TestSplit::test_split[openai/gpt-4o]"]
    failed = got["tests/unit/test_cache.py::test_expires"]
    assert (failed.outcome, failed.message, failed.category, failed.duration_s) == (
        "failed", "AssertionError: assert 'v' is None", "tests/unit", 0.002)
    assert "E       AssertionError" in failed.details
    skipped = got["tests/unit/test_cache.py::test_shared"]
    assert (skipped.outcome, skipped.skip_reason) == ("skipped", "needs a shared Redis")
    param = got["tests/unit/test_router.py::TestSplit::test_split[openai/gpt-4o]"]
    assert (param.outcome, param.file, param.name) == ("passed", "tests/unit/test_router.py",
                                                       "TestSplit::test_split[openai/gpt-4o]")


def test_pytest_junit_without_file_attribute_finds_the_class_by_its_capital(tmp_path):
    got = _by_id(read_junit(_write(tmp_path, PYTEST_XUNIT2)))
    assert set(got) == {"tests/integration/test_flow.py::TestFailover::test_skips_open", "test_root.py::test_alone"}
    err = got["test_root.py::test_alone"]
    assert (err.outcome, err.message, err.category) == ("error", "failed on setup with \"fixture 'db' not found\"", ".")
    assert got["tests/integration/test_flow.py::TestFailover::test_skips_open"].duration_s == 1.5


def test_gotestsum_junit_uses_package_ids_and_the_outputs_own_words(tmp_path):
    got = _by_id(read_junit(_write(tmp_path, GOTESTSUM)))
    assert list(got) == ["example.com/gw/router.TestPick", "example.com/gw/router.TestPick/GO-1.1_cheapest",
                         "example.com/gw/router.TestFailover", "example.com/gw/router.TestStream"]
    # gotestsum's message is "Failed": the reason is the t.Errorf line, without its file:line prefix
    assert got["example.com/gw/router.TestFailover"].message == "got a, want b"
    assert got["example.com/gw/router.TestStream"].skip_reason == "needs a provider"
    assert {r.category for r in got.values()} == {"example.com/gw/router"}


def test_jest_junit_ids_by_file_and_failure_text_as_message(tmp_path):
    got = _by_id(read_junit(_write(tmp_path, JEST_JUNIT)))
    failed = got["src/__tests__/router.test.js::router fails over"]
    assert (failed.outcome, failed.message, failed.category) == (
        "failed", "Error: expect(received).toBe(expected)", "src/__tests__")
    assert got["src/__tests__/router.test.js::router streams"].outcome == "skipped"
    assert got["src/__tests__/router.test.js::router picks the cheapest provider"].outcome == "passed"


def test_surefire_lone_testsuite_root_comma_times_and_errors(tmp_path):
    got = _by_id(read_junit(_write(tmp_path, SUREFIRE)))
    err = got["com.example.gw.RouterTest::failsOver"]
    assert (err.outcome, err.message, err.duration_s, err.category) == (
        "error", "Connection refused", 1200.5, "com.example.gw.RouterTest")
    assert got["com.example.gw.RouterTest::streams"].skip_reason == "needs a provider"
    assert got["com.example.gw.RouterTest::picksCheapest"].outcome == "passed"


def test_nested_suites_give_each_case_its_nearest_suite(tmp_path):
    got = _by_id(read_junit(_write(tmp_path, NESTED)))
    assert {k: v.category for k, v in got.items()} == {"Inner::x": "inner", "Outer::y": "outer"}


@pytest.mark.parametrize("text, where", [
    ("<testsuites><testsuite>\n<testcase name='x'></testsuite>", r"junit\.xml:2:\d+: not valid XML: mismatched tag"),
    ("<html/>", r"junit\.xml:1: root element <html>: expected <testsuites> or <testsuite>"),
    ("<testsuites><testsuite name='a'>\n\n<testcase classname='c' time='1'/></testsuite></testsuites>",
     r"junit\.xml:3: testcase: name: missing"),
    ("<testsuites><testsuite name='a'>\n<testcase name='x' time='soon'/></testsuite></testsuites>",
     r"junit\.xml:2: testcase: time: not a number: 'soon'"),
])
def test_malformed_junit_names_file_and_line(tmp_path, text, where):
    with pytest.raises(ConfigError, match=where):
        read_junit(_write(tmp_path, text))


def test_missing_junit_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such JUnit file"):
        read_junit(tmp_path / "nope.xml")


def test_collect_only_q_lists_node_ids_counts_and_errors():
    out = parse_collect_only(
        "tests/unit/test_router.py::test_a\n"
        "tests/unit/test_router.py::TestSplit::test_b[openai/gpt 4o]\n"
        "tests/integration/test_flow.py::test_c\n\n"
        "==================================== ERRORS ====================================\n"
        "_____________________ ERROR collecting tests/test_bad.py ______________________\n"
        "E   ModuleNotFoundError: No module named 'redis'\n"
        "=========================== short test summary info ============================\n"
        "ERROR tests/test_bad.py\n"
        "!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!\n"
        "3 tests collected, 1 error in 0.12s\n")
    assert out.ids == ["tests/unit/test_router.py::test_a", "tests/unit/test_router.py::TestSplit::test_b[openai/gpt 4o]",
                       "tests/integration/test_flow.py::test_c"]
    assert out.counts == {"tests/unit/test_router.py": 2, "tests/integration/test_flow.py": 1}
    assert out.errors == ["tests/test_bad.py"]


def test_collect_only_qq_gives_counts_per_file():
    out = parse_collect_only("tests/unit/test_router.py: 5\ntests/unit/test_cache.py: 3\n\n8 tests collected in 0.1s\n")
    assert (out.ids, out.counts) == ([], {"tests/unit/test_router.py": 5, "tests/unit/test_cache.py": 3})


def _events(*events):
    return "\n".join(json.dumps(e) for e in events) + "\n"


def test_go_json_subtests_skips_failures_build_failures_and_a_dead_binary(tmp_path):
    p, q, b = "example.com/gw/router", "example.com/gw/stream", "example.com/gw/bad"
    text = _events(
        {"Action": "run", "Package": p, "Test": "TestPick"},
        {"Action": "run", "Package": p, "Test": "TestPick/GO-1.1_cheapest"},
        {"Action": "output", "Package": p, "Test": "TestPick/GO-1.1_cheapest", "Output": "    router_test.go:9: got a\n"},
        {"Action": "fail", "Package": p, "Test": "TestPick/GO-1.1_cheapest", "Elapsed": 0.01},
        {"Action": "output", "Package": p, "Test": "TestPick", "Output": "--- FAIL: TestPick (0.01s)\n"},
        {"Action": "fail", "Package": p, "Test": "TestPick", "Elapsed": 0.02},
        {"Action": "run", "Package": p, "Test": "TestLater"},
        {"Action": "output", "Package": p, "Test": "TestLater", "Output": "    router_test.go:20: needs a clock\n"},
        {"Action": "skip", "Package": p, "Test": "TestLater", "Elapsed": 0},
        {"Action": "fail", "Package": p, "Elapsed": 0.05},
        # an older Go: the test that panicked never gets its own final event
        {"Action": "run", "Package": q, "Test": "TestBoom"},
        {"Action": "output", "Package": q, "Test": "TestBoom", "Output": "panic: assignment to entry in nil map\n"},
        {"Action": "fail", "Package": q, "Elapsed": 0.01},
        {"ImportPath": f"{b} [{b}.test]", "Action": "build-output", "Output": f"# {b} [{b}.test]\n"},
        {"ImportPath": f"{b} [{b}.test]", "Action": "build-output", "Output": "bad/bad.go:3:23: cannot use \"x\" as int\n"},
        {"ImportPath": f"{b} [{b}.test]", "Action": "build-fail"},
        {"Action": "output", "Package": b, "Output": f"FAIL\t{b} [build failed]\n"},
        {"Action": "fail", "Package": b, "Elapsed": 0},
    )
    got = _by_id(read_go_json(tmp_path / "events.json", text))
    assert {k: v.outcome for k, v in got.items()} == {
        f"{p}.TestPick": "failed", f"{p}.TestPick/GO-1.1_cheapest": "failed", f"{p}.TestLater": "skipped",
        f"{q}.TestBoom": "error", b: "error"}
    assert got[f"{p}.TestPick/GO-1.1_cheapest"].message == "got a"
    assert got[f"{p}.TestPick"].message == "subtest TestPick/GO-1.1_cheapest failed"
    assert got[f"{p}.TestLater"].skip_reason == "needs a clock"
    assert got[f"{q}.TestBoom"].message == "panic: assignment to entry in nil map"
    assert got[b].message == 'bad/bad.go:3:23: cannot use "x" as int'
    assert (got[f"{p}.TestPick"].duration_s, got[f"{p}.TestPick"].category) == (0.02, p)


@pytest.mark.parametrize("text, where", [
    ('{"Action": "run", "Package": "p", "Test": "T"}\n{"Action": \n', r"events\.json:2: not a go test -json event"),
    ('{"Package": "p"}\n', r"events\.json:1: Action: missing"),
])
def test_malformed_go_json_names_the_line(tmp_path, text, where):
    with pytest.raises(ConfigError, match=where):
        read_go_json(tmp_path / "events.json", text)


def test_go_list_plain_and_json():
    plain = ("TestA\nTestB\nBenchmarkC\nok  \texample.com/gw/a\t0.01s\n"
             "?   \texample.com/gw/none\t[no test files]\n"
             "ExampleD\nok  \texample.com/gw/d\t0.01s\n")
    assert parse_go_list(plain) == {"example.com/gw/a": ["TestA", "TestB", "BenchmarkC"], "example.com/gw/none": [],
                                    "example.com/gw/d": ["ExampleD"]}
    as_json = _events({"Action": "output", "Package": "example.com/gw/a", "Output": "TestA\n"},
                      {"Action": "output", "Package": "example.com/gw/a", "Output": "ok  \texample.com/gw/a\t0.01s\n"})
    assert parse_go_list(as_json) == {"example.com/gw/a": ["TestA"]}
