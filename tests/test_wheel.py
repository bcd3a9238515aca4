"""The harness installed from its wheel (not the checkout): the catalogs ship inside the package,
`harness validate` and a short `harness run --only` work from a directory that knows nothing of
the checkout."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def test_the_wheel_carries_its_catalogs_and_runs_the_embedded_default(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(ROOT)], check=True, timeout=300, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("llm_gateway_harness-*.whl")
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "harness/matrices/policies.yaml" in names and "harness/matrices/claims/01-auth.yaml" in names
    assert "harness/targets/litellm.yaml" in names and "harness/report/templates/report.md.j2" in names
    assert "harness/schemas/openai_chat.json" in names   # the published-schema claims' schemas (CM-27)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # Only the wheel's own files: unpacked into the new venv (what pip would do), the dependencies
    # borrowed from this venv by a path entry (installing LiteLLM again would take minutes).
    zipfile.ZipFile(wheel).extractall(site)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (venv / "bin" / "litellm").symlink_to(Path(sys.executable).parent / "litellm")
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import harness, harness.paths as p; print(harness.__file__, p.MATRICES)"],
                           cwd=work, capture_output=True, text=True, timeout=60)
    assert str(site) in where.stdout and str(ROOT) not in where.stdout, where.stdout + where.stderr
    r = subprocess.run([str(py), "-m", "harness", "validate"], cwd=work, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and " claims, " in r.stdout, r.stdout + r.stderr
    assert str(site) in r.stdout, r.stdout
    r = subprocess.run([str(py), "-m", "harness", "run", "--only", "CM-10.1.1", "--no-load", "--no-smoke", "-n", "1",
                        "-o", str(work / "out")], cwd=work, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "PASS 1" in r.stdout and (work / "out" / "report.md").exists()
