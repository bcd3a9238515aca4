"""Built-in targets by name: `harness targets` lists them, `--target NAME` picks one, and a gateway
that is not installed is one line naming its install command, exit 3."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from harness.config import EMBEDDED_DEFAULT, builtin_targets, load

HARNESS = [sys.executable, "-m", "harness"]


def harness(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=timeout)


def test_every_builtin_target_is_an_ordinary_valid_harness_yaml():
    found = builtin_targets()
    assert found["litellm"] == EMBEDDED_DEFAULT
    for name, path in found.items():
        cfg, _ = load(path)
        assert cfg.target.install, f"{name}: target.install names how to install the gateway"


def test_targets_lists_name_gateway_installed_and_install_command():
    proc = harness("targets", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(builtin_targets())
    lite = rows["litellm"]
    assert lite["gateway"] == "litellm-proxy" and lite["installed"] is True and Path(lite["binary"]).name == "litellm"
    assert "ci/setup.sh" in lite["install"]
    text = harness("targets").stdout
    assert "litellm" in text and "litellm-proxy" in text and "INSTALL" in text


def test_target_by_name_and_its_refusals():
    proc = harness("validate", "--target", "litellm")
    assert proc.returncode == 0 and "target litellm-proxy" in proc.stdout, proc.stderr
    proc = harness("validate", "--target", "no-such-gateway")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "known: " in proc.stderr and "litellm" in proc.stderr
    proc = harness("run", "--target", "litellm", "--config", "harness.yaml")
    assert proc.returncode == 2 and "not both" in proc.stderr


def test_missing_gateway_binary_is_one_line_with_the_install_command_exit_3(tmp_path):
    data = yaml.safe_load(EMBEDDED_DEFAULT.read_text())
    data["target"]["start"]["command"][0] = str(tmp_path / "not-built" / "gateway")
    data["target"]["start"]["config_template"] = str(EMBEDDED_DEFAULT.parent / "litellm.yaml.j2")
    data["target"]["install"] = "bash ci/setup.sh --gateways"
    cfg = tmp_path / "harness.yaml"
    cfg.write_text(yaml.safe_dump(data))
    proc = harness("run", "-c", str(cfg), "-o", str(tmp_path / "out"), "--only", "CM-9.1.1", "--no-load", "--no-smoke")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("harness: error")]
    assert errors == [f"harness: error: gateway 'litellm-proxy' is not installed: {tmp_path}/not-built/gateway "
                      "not found; install it with: bash ci/setup.sh --gateways"], proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_go_gateway_fails_in_ci_skips_outside_and_says_why(tmp_path, monkeypatch):
    import pytest
    from gateways import require_gateway
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("HARNESS_GATEWAYS_BIN", str(bin_dir))   # an empty install: nothing built
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="setup is broken"):
        require_gateway("cliproxyapi")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="install it with: bash ci/setup.sh --gateways"):
        require_gateway("cliproxyapi")
    # the setup recorded the registry's refusal in this checkout: a skip with its words, CI or not
    (tmp_path / "cliproxyapi.unavailable").write_text("the Go module proxy refuses X: server response: no\n")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.skip.Exception, match="the Go module proxy refuses X"):
        require_gateway("cliproxyapi")
    (bin_dir / "cliproxyapi").write_text("#!/bin/sh\n")
    (bin_dir / "cliproxyapi").chmod(0o755)
    assert require_gateway("cliproxyapi").endswith("cliproxyapi.yaml")
