"""harness.yaml: the embedded default is valid; every bad file gets one line naming the field, exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from harness.config import EMBEDDED_DEFAULT, ConfigError, load, parse, resolve_key

BASE = yaml.safe_load(EMBEDDED_DEFAULT.read_text())


def with_change(path: str, value):
    data = yaml.safe_load(EMBEDDED_DEFAULT.read_text())
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


def test_embedded_default_is_valid():
    cfg, path = load(None)
    assert path == EMBEDDED_DEFAULT and cfg.target.start and cfg.default_model("anthropic") == "claude-mock"


@pytest.mark.parametrize("path,value,expected", [
    ("target.start", KeyError, "target: give exactly one of url (a running gateway) or start"),
    ("target.url", "ftp://x", "target.url: must start with http:// or https://"),
    ("target.auth.header", 5, "target.auth.header: Input should be a valid string"),
    ("target.protocols", ["grpc"], "target.protocols[0]: Input should be"),
    ("target.start.ready_timeout_s", -1, "target.start.ready_timeout_s: Input should be greater than 0"),
    ("providers.0.kind", "cohere", "providers[0].kind: Input should be 'openai', 'anthropic', 'gemini', 'ollama', 'llamacpp' or 'vllm'"),
    ("models.0.provider", "nope", "models[0].provider: 'nope' is not one of the providers"),
    ("models", [], "models: List should have at least 1 item"),
    ("promises.retries", -2, "promises.retries.count: Input should be greater than or equal to 0"),
    ("promises.breaker", {"opens_after": 0, "cooldown_s": 1}, "promises.breaker.opens_after: Input should be greater than or equal to 1"),
    ("promises.failover", {"preset": "x", "reports_model": "sometimes"}, "promises.failover.reports_model: Input should be"),
    ("roles.breaker", ["ghost"], "roles.breaker[0]: 'ghost' is not one of the models"),
    ("chaos.toxiproxy_url", "http://127.evil.example.com:8474", "chaos.toxiproxy_url: must be a loopback http:// URL"),
    ("promises.retrys", 2, "promises.retrys: Extra inputs are not permitted"),
    ("defaults.openai_model", "ghost", "defaults.openai_model: 'ghost' is not one of the models"),
])
def test_bad_field_is_named(path, value, expected):
    data = with_change(path, value)
    if path == "target.url":
        data["target"].pop("start")
    with pytest.raises(ConfigError) as exc:
        parse(data, "harness.yaml")
    assert str(exc.value).startswith(f"harness.yaml: {expected}"), str(exc.value)
    assert "\n" not in str(exc.value)


def test_yaml_syntax_error_has_line(tmp_path):
    bad = tmp_path / "harness.yaml"
    bad.write_text("target:\n  name: x\n  url: [unclosed\n")
    with pytest.raises(ConfigError, match=r"harness.yaml:\d+:\d+: not valid YAML"):
        load(bad)


def test_key_sources(monkeypatch):
    cfg, _ = load(None)
    a, b = resolve_key(cfg.target.auth, "x"), resolve_key(cfg.target.auth, "x")
    assert a.startswith("sk-harness-") and a != b          # generated fresh per run
    auth = cfg.target.auth.model_copy(update={"key": None, "key_env": "HARNESS_TEST_KEY"})
    monkeypatch.delenv("HARNESS_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="target.auth.key_env: environment variable HARNESS_TEST_KEY is not set"):
        resolve_key(auth, "x")
    monkeypatch.setenv("HARNESS_TEST_KEY", "sk-from-env")
    assert resolve_key(auth, "x") == "sk-from-env"


@pytest.mark.parametrize("content,needle", [
    ("version: 1\ntarget: {name: gw, url: http://127.0.0.1:1}\nproviders: [{name: p, kind: openai}]\nmodels: [{name: m, provider: q}]\n",
     "models[0].provider: 'q' is not one of the providers"),
    ("- just\n- a list\n", "the file must hold a mapping"),
    ("target: {name: [unclosed\n", "not valid YAML"),
    ("version: 1\ntarget: {name: gw, url: http://127.0.0.1:1}\ntarget: {name: other}\n",
     "harness.yaml:3:1: not valid YAML: key 'target' appears twice (first on line 2)"),
])
def test_cli_bad_config_exit_2_one_line_no_traceback(tmp_path, content, needle):
    cfg = tmp_path / "harness.yaml"
    cfg.write_text(content)
    for cmd in (["run", "--config", str(cfg), "-o", str(tmp_path / "out")], ["validate", "--config", str(cfg)]):
        r = subprocess.run([sys.executable, "-m", "harness", *cmd], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and needle in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_missing_config_file(tmp_path):
    r = subprocess.run([sys.executable, "-m", "harness", "validate", "--config", str(tmp_path / "nope.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_cli_help_and_no_command():
    r = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Exit codes" in r.stdout and "run" in r.stdout
    r = subprocess.run([sys.executable, "-m", "harness", "run", "--help"], capture_output=True, text=True, timeout=60)
    assert "--workers" in r.stdout and "--only" in r.stdout
    assert subprocess.run([sys.executable, "-m", "harness"], capture_output=True, timeout=60).returncode == 2


def test_harness_matrices_names_another_catalog(tmp_path):
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "a.yaml").write_text(
        "section: S\nclaims:\n  - {id: CM-99.1, test: test_own_claim, claim: our own, risk: security, wave: P0}\n")
    env = {**os.environ, "HARNESS_MATRICES": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "harness", "catalog", "--json"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert [c["id"] for c in json.loads(r.stdout)] == ["CM-99.1"]
    env["HARNESS_MATRICES"] = str(tmp_path / "nowhere")
    r = subprocess.run([sys.executable, "-m", "harness", "catalog"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "HARNESS_MATRICES" in r.stderr and "Traceback" not in r.stderr


def test_a_closed_pipe_ends_the_listing_quietly(tmp_path):
    # `harness catalog | head -1`: the reader leaves early. The listing is made larger than a pipe's
    # buffer so that the harness is certainly still writing when the reader goes.
    (tmp_path / "claims").mkdir()
    rows = "".join(f"  - {{id: CM-99.{i}, test: test_c{i}, claim: claim {i}, risk: security, wave: P0}}\n"
                   for i in range(1, 3001))
    (tmp_path / "claims" / "a.yaml").write_text("section: S\nclaims:\n" + rows)
    p = subprocess.Popen([sys.executable, "-m", "harness", "catalog"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "HARNESS_MATRICES": str(tmp_path)})
    assert p.stdout.readline().startswith(b"CM-99.1 ")
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141 and "Traceback" not in err, err
