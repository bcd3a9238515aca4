"""Keys never appear in any file written: canary keys planted where keys live (the gateway key from
the environment, a provider key in harness.yaml, a provider key in the environment), every lane run
through a real LiteLLM, then every file the run wrote searched for them."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
TARGETS = Path(__file__).resolve().parent.parent / "harness" / "targets"


def test_no_canary_key_in_any_file_written(tmp_path):
    # Not shaped like sk-...: the redactor must know them, not merely recognise a key's look.
    gateway_key, provider_key, env_key = (f"canary{kind}{secrets.token_hex(12)}" for kind in ("gw", "prov", "env"))
    (tmp_path / "litellm.yaml.j2").write_text((TARGETS / "litellm.yaml.j2").read_text())
    cfg = (TARGETS / "litellm.yaml").read_text()
    cfg = cfg.replace("    key: generate                           # a fresh master key per run, never written to a report",
                      "    key_env: CANARY_GATEWAY_KEY")
    cfg = cfg.replace("  - {name: gpt-mock, provider: openai-a, upstream_model: gpt-4o-mini}",
                      f"  - {{name: gpt-mock, provider: openai-a, upstream_model: gpt-4o-mini, gateway: {{api_key: {provider_key}}}}}")
    assert "CANARY_GATEWAY_KEY" in cfg and provider_key in cfg
    (tmp_path / "h.yaml").write_text(cfg)
    out = tmp_path / "out"
    env = {**os.environ, "CANARY_GATEWAY_KEY": gateway_key, "OPENAI_API_KEY": env_key, "ANTHROPIC_API_KEY": env_key}
    r = subprocess.run([sys.executable, "-m", "harness", "run", "-c", str(tmp_path / "h.yaml"), "-o", str(out), "-n", "2",
                        "--only", "CM-1", "--only", "CM-10.1", "--only", "CM-16", "--only", "CM-19.1", "--only", "CM-21",
                        "--only", "SMOKE", "--history", str(tmp_path / "history")],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode in (0, 1), r.stdout[-2000:] + r.stderr[-2000:]
    files = [p for p in [*out.rglob("*"), *(tmp_path / "history").rglob("*")] if p.is_file()]
    assert len(files) > 10 and any(p.name == "gateway.log" for p in files)
    for p in files:
        data = p.read_bytes()
        for key in (gateway_key, provider_key, env_key):
            assert key.encode() not in data, f"{key[:12]}... in {p}"
    for text in (r.stdout, r.stderr):
        for key in (gateway_key, provider_key, env_key):
            assert key not in text
