"""The built-in targets are data only: their config templates render into the gateway's own format
with the chains, keys and ports the harness.yaml says, and no Python module names either Go gateway.
(The runs against the real binaries are tests/test_e2e_cliproxyapi.py and test_e2e_gozen.py.)"""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from harness.config import builtin_targets, load, parse
from harness.smoke.lane import smoke_config
from harness.smoke.matrix import load_matrix
from harness.world.gateway import render_config
from harness.world.routes import Routes

HARNESS = Path(__file__).resolve().parent.parent / "harness"


def rendered(name: str, cfg=None) -> tuple[object, dict]:
    """The target's config file for a run, with made-up provider ports, parsed."""
    path = builtin_targets()[name]
    base, _ = load(path)
    cfg = cfg or base
    providers = {p.name: {"name": p.name, "kind": p.kind, "url": f"http://127.0.0.1:{20000 + i}"}
                 for i, p in enumerate(cfg.providers)}
    ctx = {"providers": providers, "models": cfg.models, "promises": cfg.promises, "gateway_key": "sk-harness-test",
           "port": 19999, "ports": {"web": 19998}, "workdir": "/tmp/run", "now": {"iso": "2026-01-01T00:00:00Z"}}
    text = render_config(path.parent / cfg.target.start.config_template, ctx)
    return cfg, (json.loads(text) if cfg.target.start.config_filename.endswith(".json") else yaml.safe_load(text))


def test_no_python_module_names_a_go_gateway():
    offenders = [f"{p.relative_to(HARNESS)}:{i}" for p in HARNESS.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"cliproxy|gozen|zen\.json|dopejs|router-for-me|GOZEN", line, re.I)]
    assert offenders == [], "gateway-specific code: " + ", ".join(offenders)


def test_cliproxyapi_config_chains_as_credentials_in_priority_order():
    cfg, conf = rendered("cliproxyapi")
    assert conf["host"] == "127.0.0.1" and conf["port"] == 19999 and conf["api-keys"] == ["sk-harness-test"]
    assert conf["remote-management"]["disable-control-panel"] is True and conf["remote-management"]["secret-key"] == ""
    assert conf["request-retry"] == cfg.promises.retries.count
    assert conf["transient-error-cooldown-seconds"] == int(cfg.promises.breaker.cooldown_s)
    compat = conf["openai-compatibility"]
    fo = [e for e in compat if e["models"][0]["alias"] == "fo-primary"]
    # fo-primary -> fo-secondary -> fo-tertiary: openai-a, -b, -c in that order of priority
    assert [(e["priority"], e["base-url"]) for e in fo] == [(100, "http://127.0.0.1:20000/v1"),
                                                           (99, "http://127.0.0.1:20001/v1"),
                                                           (98, "http://127.0.0.1:20002/v1")]
    # cooling stays on for the breaker models' own credential only
    cooling = sorted(e["models"][0]["alias"] for e in compat if e["disable-cooling"] is False)
    assert cooling == sorted(cfg.roles.breaker)
    claude = conf["claude-api-key"]
    assert [(e["models"][0]["alias"], e["models"][0]["name"]) for e in claude] == [("claude-mock", "claude-3-5-haiku-20241022")]
    keys = [k["api-key"] for e in compat for k in e["api-key-entries"]] + [e["api-key"] for e in claude]
    assert len(set(keys)) == len(keys), "each credential entry is a credential of its own"


def test_cliproxyapi_smoke_routes_use_its_namespaces():
    base, _ = load(builtin_targets()["cliproxyapi"])
    cfg = smoke_config(base, load_matrix("default"))
    _, conf = rendered("cliproxyapi", cfg)
    compat = {(e.get("prefix"), e["models"][0]["alias"]) for e in conf["openai-compatibility"]}
    assert ("openai", "gpt-4o-mini") in compat and ("llamacpp", "qwen2.5-7b-instruct") in compat
    gem = {(e.get("prefix"), e["models"][0]["alias"]) for e in conf["gemini-api-key"]}
    assert (None, "fast") in gem and ("gemini", "gemini-2.0-flash-lite") in gem
    assert "ollama" not in json.dumps(conf), "no Ollama shape in CLIProxyAPI: those routes are declared not offered"


def test_gozen_profiles_per_model_tiers_pinned_and_no_client_auth():
    cfg, conf = rendered("gozen")
    assert conf["version"] == 15 and conf["proxy_port"] == 19999 and conf["web_port"] == 19998
    fo = conf["profiles"]["fo-primary"]
    assert fo["strategy"] == "failover"
    assert [conf["providers"][n]["base_url"] for n in fo["providers"]] == [
        "http://127.0.0.1:20000", "http://127.0.0.1:20001", "http://127.0.0.1:20002"]
    claude = conf["providers"][conf["profiles"]["claude-mock"]["providers"][0]]
    assert claude["type"] == "anthropic"
    assert {claude[k] for k in ("model", "haiku_model", "sonnet_model", "opus_model", "reasoning_model")} == {
        "claude-3-5-haiku-20241022"}
    assert not cfg.target.auth.takes_key
    routes = Routes(cfg)
    assert routes.path("chat", "fo-primary") == "/fo-primary/harness/v1/chat/completions"
    assert routes.path("models") == "/gpt-mock/harness/v1/models"   # no model named: the default model's profile


def test_gozen_smoke_profiles_are_one_url_segment():
    base, _ = load(builtin_targets()["gozen"])
    cfg = smoke_config(base, load_matrix("default"))
    _, conf = rendered("gozen", cfg)
    assert "openai--gpt-4o-mini" in conf["profiles"] and "fast" not in conf["profiles"]   # gemini: no provider type
    assert Routes(cfg).path("chat", "openai/gpt-4o-mini") == "/openai--gpt-4o-mini/harness/v1/chat/completions"


def test_path_and_header_templates_are_checked_at_load(tmp_path):
    data = yaml.safe_load(builtin_targets()["gozen"].read_text())
    data["target"]["paths"]["chat"] = "/{{ model.nmae }}/v1/chat/completions"
    data["target"]["start"]["config_template"] = str(builtin_targets()["gozen"].parent / "gozen.zen.json.j2")
    bad = tmp_path / "harness.yaml"
    bad.write_text(yaml.safe_dump(data))
    from harness.config import ConfigError
    try:
        load(bad)
    except ConfigError as exc:
        assert "target.paths.chat" in str(exc) and "nmae" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("a broken path template passed validation")


def test_per_model_paths_and_headers_and_target_headers():
    data = yaml.safe_load(builtin_targets()["cliproxyapi"].read_text())
    data["target"]["headers"] = {"X-Team": "harness"}
    data["models"][0]["paths"] = {"chat": "/route/{{ provider.name }}/chat"}
    data["models"][0]["headers"] = {"X-Upstream": "{{ provider.url }}"}
    cfg = parse(data, "harness.yaml")
    routes = Routes(cfg, {p.name: {"name": p.name, "kind": p.kind, "url": f"http://127.0.0.1:1{i}"}
                          for i, p in enumerate(cfg.providers)})
    m = cfg.models[0]
    assert routes.path("chat", m.name) == f"/route/{m.provider}/chat"
    assert routes.path("chat", cfg.models[1].name) == "/v1/chat/completions"
    assert routes.model_headers(m.name) == {"X-Upstream": "http://127.0.0.1:10"}
    assert routes.target_headers() == {"X-Team": "harness"}


def test_auth_schemes():
    data = yaml.safe_load(builtin_targets()["cliproxyapi"].read_text())
    auth = parse(data, "h").target.auth
    assert auth.headers("k") == {"Authorization": "Bearer k"}
    data["target"]["auth"] = {"header": "x-api-key", "scheme": None, "key": "generate"}
    assert parse(data, "h").target.auth.headers("k") == {"x-api-key": "k"}
    for none in ({"header": None}, {"scheme": "none"}):
        data["target"]["auth"] = none
        a = parse(data, "h").target.auth
        assert not a.takes_key and a.headers("k") == {}


def test_provider_ports_fixed_or_templated(monkeypatch):
    from harness.config import ConfigError
    data = yaml.safe_load(builtin_targets()["cliproxyapi"].read_text())
    data["providers"][0]["port"] = "{{ env.HARNESS_TEST_MOCK_PORT | default(18001) }}"
    assert parse(data, "h").providers[0].port == 18001
    monkeypatch.setenv("HARNESS_TEST_MOCK_PORT", "18555")
    assert parse(data, "h").providers[0].port == 18555
    monkeypatch.setenv("HARNESS_TEST_MOCK_PORT", "eighty")
    try:
        parse(data, "h")
    except ConfigError as exc:
        assert str(exc).startswith("h: providers[0].port: the template gives 'eighty', not a port number"), exc
    else:
        raise AssertionError("a port template giving no number passed")
