"""Budgets, enforced and reported: a check past --check-budget is stopped where it is and not
judged; past the run's --budget nothing more starts; either way every verdict is a record with its
reason, and the report is written."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from harness.results.stream import read
from timing import bound

pytestmark = pytest.mark.e2e


def run(tmp_path, *args):
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "harness", "run", "-o", str(tmp_path / "out"), "--no-load", "--no-smoke",
                        "-n", "1", *args], capture_output=True, text=True, timeout=600)
    return r, time.monotonic() - t0, {rec.id: rec for rec in read(tmp_path / "out" / "results.jsonl").records}


def test_a_check_past_its_budget_is_stopped_and_not_judged(tmp_path):
    # CM-2.5 waits out LiteLLM's 60 s rate-limit window; CM-10.1.1 takes well under a second.
    r, took, got = run(tmp_path, "--only", "CM-2.5", "--only", "CM-10.1.1", "--check-budget", "5")
    assert r.returncode == 1, r.stdout + r.stderr
    assert got["CM-2.5"].status == "ERROR" and got["CM-2.5"].reason == "not judged: the check's budget of 5s ran out"
    assert got["CM-2.5"].duration_s < bound(5)
    assert got["CM-10.1.1"].status == "PASS"
    assert "CM-2.5" in (tmp_path / "out" / "report.md").read_text().split("## Not judged (ERROR)")[1]


def test_past_the_runs_budget_nothing_starts(tmp_path):
    r, took, got = run(tmp_path, "--only", "CM-10.1", "--budget", "1")   # the gateway alone takes longer to start
    assert r.returncode == 1, r.stdout + r.stderr
    assert len(got) == 12 and {rec.status for rec in got.values()} == {"ERROR"}
    assert {rec.reason for rec in got.values()} == {"not judged: the run's budget of 1s ran out before the claims lane"}
    md = (tmp_path / "out" / "report.md").read_text()
    assert "**Release gate: NOT CLEARED**" in md
    import json
    assert json.loads((tmp_path / "out" / "results.json").read_text())["options"]["budget_s"] == 1.0
