from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from harness.client.control import ProviderControl
from harness.config import ProviderCfg
from harness.world.mocks import start_mocks
from harness.world.processes import exited_unasked

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))   # test equipment: tests/faulty_gateway.py
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def mocks(tmp_path_factory):
    """One OpenAI-style and one Anthropic-style mock provider, in their own process."""
    log_dir = tmp_path_factory.mktemp("mocks")
    child, ports = start_mocks([ProviderCfg(name="oa", kind="openai"), ProviderCfg(name="an", kind="anthropic")],
                               log_dir, seed=7)
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    yield {"urls": urls, "child": child, "oa": ProviderControl("oa", urls["oa"]),
           "an": ProviderControl("an", urls["an"])}
    child.stop(grace_s=3)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture
def browser():
    """Headless Chromium driven over CDP (tests/browser.py); killed and its profile removed after the test.

    Skips only when chromium is missing outside CI; in CI (CI=true) a missing chromium is a failure,
    since ci/setup-browser.sh (run by ci/test.sh) installs it."""
    from browser import Browser, find_chromium

    exe = find_chromium()
    if exe is None:
        if _in_ci():
            pytest.fail("chromium is not on PATH in CI: ci/setup-browser.sh (run by ci/test.sh) should have "
                        "installed it (apt-get install chromium)", pytrace=False)
        pytest.skip("chromium is not on PATH: run `bash ci/setup-browser.sh` (or apt-get install chromium)")
    with Browser(exe) as b:
        yield b


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test says which of its children (a gateway, the mocks) had died, how, and its log's end:
    a proxy that vanished mid-module otherwise shows only as 'connection refused' in every later test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for child in exited_unasked():
            rc = child.proc.returncode
            how = f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"
            report.sections.append((f"{child.name} (pid {child.pid}) had exited: {how}",
                                    child.log_tail(30) or "(no log)"))
