"""The CI templates a team copies (ci/workflows/*.yml) are valid GitHub Actions workflows, as
actionlint (installed by ci/setup-actionlint.sh) reads them."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ACTIONLINT = ROOT / ".tools" / "bin" / "actionlint"


def test_every_workflow_template_passes_actionlint():
    if not ACTIONLINT.exists():
        if os.environ.get("CI"):
            pytest.fail("actionlint is not installed: ci/test.sh runs ci/setup-actionlint.sh")
        pytest.skip("actionlint not installed here: run bash ci/setup-actionlint.sh")
    workflows = sorted((ROOT / "ci" / "workflows").glob("*.yml"))
    assert len(workflows) >= 3
    r = subprocess.run([str(ACTIONLINT), "-no-color", *map(str, workflows)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path):
    if not ACTIONLINT.exists():
        if os.environ.get("CI"):
            pytest.fail("actionlint is not installed: ci/test.sh runs ci/setup-actionlint.sh")
        pytest.skip("actionlint not installed here")
    bad = tmp_path / "bad.yml"
    bad.write_text("on: [push]\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
                   "      - uses: actions/checkout@v4\n        with: {fetch-depth: zero}\n        bogus: 1\n")
    r = subprocess.run([str(ACTIONLINT), "-no-color", str(bad)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "bogus" in r.stdout, r.stdout
