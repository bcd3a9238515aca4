"""For the e2e tests of the built-in Go gateways: is the real binary here, and if not, why.

In CI (CI=true) the test setup (ci/test.sh -> ci/setup.sh --gateways) builds every gateway, so a
missing binary fails the test: the setup is broken. The one exception is a gateway whose module the
Go module proxy refused in that very setup run (ci/setup-gateways.sh records the proxy's own words
in .gateways/<name>.unavailable): nothing on this machine can get it, and the skip says so.
Outside CI a missing binary is a skip naming the install command."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import builtin_targets, load
from harness.world.gateway import installed, unavailable


def require_gateway(target: str) -> str:
    """The built-in target's config path, once its gateway binary is known to be installed."""
    path = builtin_targets()[target]
    cfg, _ = load(path)
    if installed(cfg):
        return str(path)
    why = unavailable(cfg)
    if why:
        pytest.skip(f"{target}: the project's setup could not install it on this machine: {why}")
    if os.environ.get("CI") == "true":
        pytest.fail(f"{target}: the gateway is not installed in CI, where `bash ci/setup.sh --gateways` "
                    f"(run by ci/test.sh) builds it: the setup is broken")
    pytest.skip(f"{target}: the gateway is not installed; install it with: {cfg.target.install}")


def run_target(target: str, out: Path, timeout_s: float) -> subprocess.CompletedProcess:
    """`harness run --target TARGET` whole (every lane), as a user runs it, once its gateway is installed."""
    require_gateway(target)
    return subprocess.run([sys.executable, "-m", "harness", "run", "--target", target, "-o", str(out), "-n", "2"],
                          capture_output=True, text=True, timeout=timeout_s)
