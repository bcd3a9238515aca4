"""OpenAI-compatible local servers (llama.cpp, vLLM) as provider kinds of a harness.yaml: each
mock speaks its own dialect, a gateway routes to them as OpenAI, and they count as OpenAI-style
models for the claims that need one."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import parse

TEMPLATE = Path(__file__).resolve().parent.parent / "harness" / "targets" / "litellm.yaml.j2"


def config(tmp_path: Path) -> Path:
    path = tmp_path / "h.yaml"
    path.write_text(f"""version: 1
target:
  name: litellm-local
  start:
    command: ["{{{{ bin_dir }}}}/litellm", "--config", "{{{{ config_path }}}}", "--host", "127.0.0.1", "--port", "{{{{ port }}}}", "--num_workers", "1"]
    config_template: {TEMPLATE}
    env: {{LITELLM_LOCAL_MODEL_COST_MAP: "true", LITELLM_OFFLINE_MODE: "true"}}
    ready_path: /health/liveliness
  auth: {{key: generate}}
providers: [{{name: llama, kind: llamacpp}}, {{name: vl, kind: vllm}}]
models: [{{name: local-a, provider: llama}}, {{name: local-b, provider: vl}}]
""")
    return path


def test_local_server_kinds_are_openai_style_models(tmp_path):
    import yaml
    cfg = parse(yaml.safe_load(config(tmp_path).read_text()), "h.yaml")
    assert [p.kind for p in cfg.providers] == ["llamacpp", "vllm"]
    assert cfg.default_model("openai") == "local-a" and cfg.default_model("anthropic") is None


@pytest.mark.e2e
def test_chat_claims_pass_through_litellm_to_a_local_server(tmp_path):
    r = subprocess.run([sys.executable, "-m", "harness", "run", "-c", str(config(tmp_path)), "-o", str(tmp_path / "out"),
                        "--only", "CM-10.1", "--no-load", "--no-smoke", "-n", "2"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "PASS 12" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
