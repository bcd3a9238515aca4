"""The models the metrics and concurrency claims have to themselves (roles.metrics, roles.concurrency):
a harness.yaml that lets another claim send to one is refused with the field and the clash, exit 2,
never left to give FAILs the gateway did not earn (a counter or a slot moved by someone else)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from harness.config import ConfigError, parse

MODELS = ["gpt-mock", "claude-mock", "obs-model", "nf-model", "cc-0", "cc-1", "brk-0", "rl-0"]


def config(defaults: dict, roles: dict) -> dict:
    return {"target": {"name": "gw", "url": "http://127.0.0.1:1"},
            "providers": [{"name": "oa", "kind": "openai"}, {"name": "an", "kind": "anthropic"}],
            "models": [{"name": m, "provider": "an" if m.startswith("claude") else "oa"} for m in MODELS],
            "defaults": defaults, "roles": roles}


GOOD_DEFAULTS = {"openai_model": "gpt-mock", "anthropic_model": "claude-mock"}
GOOD_ROLES = {"metrics": "obs-model", "no_fallback": "nf-model", "concurrency": ["cc-0", "cc-1"],
              "breaker": ["brk-0"], "rate_limit": ["rl-0"]}


def test_models_of_their_own_pass():
    cfg = parse(config(GOOD_DEFAULTS, GOOD_ROLES), "harness.yaml")
    assert cfg.roles.metrics == "obs-model" and cfg.roles.concurrency == ["cc-0", "cc-1"]


@pytest.mark.parametrize("defaults,roles,expected", [
    ({**GOOD_DEFAULTS, "openai_model": "obs-model"}, GOOD_ROLES,
     "roles.metrics: 'obs-model' is also defaults.openai_model: the metrics claims read its counters"),
    (GOOD_DEFAULTS, {**GOOD_ROLES, "no_fallback": "obs-model"},
     "roles.metrics: 'obs-model' is also roles.no_fallback"),
    (GOOD_DEFAULTS, {**GOOD_ROLES, "metrics": "cc-1"},
     "roles.metrics: 'cc-1' is also roles.concurrency[1]"),
    (GOOD_DEFAULTS, {**GOOD_ROLES, "concurrency": ["cc-0", "cc-0"]},
     "roles.concurrency[0]: 'cc-0' is also roles.concurrency[1]: each concurrency claim holds its model's slots"),
    (GOOD_DEFAULTS, {**GOOD_ROLES, "concurrency": ["cc-0", "brk-0"]},
     "roles.concurrency[1]: 'brk-0' is also roles.breaker[0]"),
    (GOOD_DEFAULTS, {**GOOD_ROLES, "concurrency": ["cc-0", "gpt-mock"]},
     "roles.concurrency[1]: 'gpt-mock' is also defaults.openai_model"),
    # unset, the conformance checks' model is the first OpenAI-style one: here the metrics model
    ({"anthropic_model": "claude-mock"}, {**GOOD_ROLES, "metrics": "gpt-mock"},
     "roles.metrics: 'gpt-mock' is also defaults.openai_model (unset: the first openai-style model)"),
])
def test_a_shared_model_is_refused_naming_the_field_and_the_clash(defaults, roles, expected):
    with pytest.raises(ConfigError) as exc:
        parse(config(defaults, roles), "harness.yaml")
    assert str(exc.value).startswith(f"harness.yaml: {expected}"), str(exc.value)
    assert "\n" not in str(exc.value)


def test_the_cli_exits_2_on_a_shared_model(tmp_path):
    path = tmp_path / "harness.yaml"
    path.write_text(yaml.safe_dump(config(GOOD_DEFAULTS, {**GOOD_ROLES, "concurrency": ["cc-0", "cc-0"]})))
    r = subprocess.run([sys.executable, "-m", "harness", "validate", "--config", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "roles.concurrency[0]: 'cc-0' is also roles.concurrency[1]" in r.stderr and "Traceback" not in r.stderr
