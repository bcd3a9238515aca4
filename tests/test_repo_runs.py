"""Running a team's tools: every child has a deadline and dies with its whole process group when
it passes; a run that cannot happen is a RepoRunError saying why; bad input is refused before
anything runs; the harness's own test-run variables do not leak into the team's run."""
from __future__ import annotations

import sys
import textwrap
import time

import psutil
import pytest

from harness.config import ConfigError
from harness.repo import RepoRunError, analyse, go_available, run_go, run_pytest
from harness.repo import proc


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_a_child_past_its_deadline_is_killed_with_its_own_children(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    script = textwrap.dedent(f"""
        import subprocess, time
        p = subprocess.Popen(["sleep", "60"])
        open({str(pidfile)!r}, "w").write(str(p.pid))
        time.sleep(60)
    """)
    started = time.monotonic()
    with pytest.raises(RepoRunError, match="did not finish within 2 s"):
        proc.run([sys.executable, "-c", script], tmp_path, timeout_s=2)
    assert time.monotonic() - started < 30
    assert _gone(int(pidfile.read_text()))          # the suite's own children go too


def test_a_command_that_does_not_exist_is_a_run_error(tmp_path):
    with pytest.raises(RepoRunError, match="no-such-tool-here: cannot run"):
        proc.run(["no-such-tool-here"], tmp_path, timeout_s=5)


def test_the_harness_own_run_variables_do_not_reach_the_team(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("COVERAGE_PROCESS_START", "/somewhere/.coveragerc")
    monkeypatch.setenv("KEEP_ME", "1")
    env = proc.child_env({"GOFLAGS": "-mod=mod"})
    assert "PYTEST_XDIST_WORKER" not in env and "COVERAGE_PROCESS_START" not in env
    assert (env["KEEP_ME"], env["GOFLAGS"], env["PYTHONDONTWRITEBYTECODE"]) == ("1", "-mod=mod", "1")


def test_a_pytest_run_that_cannot_start_is_a_run_error_naming_the_exit(tmp_path):
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    with pytest.raises(RepoRunError, match="exit 4"):              # pytest's usage error
        run_pytest(repo, tmp_path / "out", extra_args=["--no-such-option"], timeout_s=120)


def test_a_pytest_run_without_coverage_still_reads_results(tmp_path):
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "test_a.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    assert 0, 'no'\n")
    run = run_pytest(repo, tmp_path / "out", coverage=False, timeout_s=120)
    assert (run.coverage_file, run.returncode) == (None, 1)
    assert {r.id: r.outcome for r in run.results} == {"tests/test_a.py::test_a": "passed",
                                                      "tests/test_a.py::test_b": "failed"}


@pytest.mark.skipif(not go_available(), reason="no `go` on PATH")
def test_go_outside_a_module_is_an_error_result_not_silence(tmp_path):
    run = run_go(tmp_path, tmp_path / "out", timeout_s=120)
    assert [(r.id, r.outcome) for r in run.results] == [("./...", "error")]
    assert "does not contain main module" in run.results[0].message


def test_no_go_toolchain_is_a_run_error(tmp_path):
    with pytest.raises(RepoRunError, match="no-such-go: cannot run"):
        run_go(tmp_path, tmp_path / "out", go="no-such-go", timeout_s=10)


def test_a_bad_plan_is_refused_before_anything_runs(tmp_path):
    plan = tmp_path / "plan.md"
    plan.write_text("| id | test |\n|---|---|\n| A-1 | t |\n| A-1 | u |\n")
    with pytest.raises(ConfigError, match=r"plan\.md:4: id: A-1 already on"):
        analyse(tmp_path, tmp_path / "out", plan=plan)
    assert not (tmp_path / "out").exists()
