"""`harness init --from-litellm CONFIG.yaml`: a team's own LiteLLM proxy config, kept as it is, as
the config template of a new harness.yaml.

What changes in the team's file, and only that:
  - every deployment's `api_base` points at a mock provider of the right shape (one mock per
    deployment, so a failover is visible as a change of provider): OpenAI and OpenAI-compatible
    servers (vLLM, llama.cpp, LM Studio...), Anthropic, Gemini, Ollama; a provider with no mock of its
    shape (Azure, Bedrock, Vertex...) is served as OpenAI-compatible and said so in a comment;
  - keys and other `os.environ/...` values become mock values (no real key is ever read or written);
  - Redis-backed cache and router state become local ones (unless --keep-redis: Redis is then yours
    to run), a database and remote callbacks are dropped (the run is offline);
  - the master key is the run's generated key.
What the harness.yaml promises is read from the same file: the model list, fallbacks of every kind,
retries, timeouts, cooldowns, rpm limits, the cache, model group aliases; each promise names the
setting it came from (promises.sources). The report then says where the file and the proxy disagree:
a fallback chain naming a model the model list lacks is the catalog claim CM-9.1.3's FAIL.
"""
from __future__ import annotations

import copy
import re
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import yaml

from harness.config import ConfigError, parse

# LiteLLM provider prefixes -> the mock shape that serves them, and api_base's suffix for that shape
KINDS = {"openai": "openai", "text-completion-openai": "openai", "hosted_vllm": "openai", "openai_like": "openai",
         "lm_studio": "openai", "llamafile": "openai", "custom_openai": "openai", "deepseek": "openai",
         "anthropic": "anthropic", "gemini": "gemini", "ollama": "ollama", "ollama_chat": "ollama"}
API_BASE = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta", "ollama": ""}
BARE = (("claude", "anthropic"), ("gemini", "gemini"))   # prefix-less model names LiteLLM routes by name
SLOT = "@@harness@@"   # where the rendered template fills in a mock's address or the run's key
FALLBACK_KINDS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
REMOTE_CALLBACKS = ("success_callback", "failure_callback", "callbacks", "service_callback")


def _kind(model: str) -> tuple[str, str, Optional[str]]:
    """(mock shape, LiteLLM model string to keep or use, why it was changed)."""
    prefix, _, rest = model.partition("/")
    if rest and prefix in KINDS:
        return KINDS[prefix], model, None
    if rest:   # a provider the mocks have no shape for: keep the upstream model, speak OpenAI to a mock
        return "openai", f"openai/{rest}", f"{prefix}/ has no mock provider of its shape: served as OpenAI-compatible"
    for start, kind in BARE:
        if model.startswith(start):
            return kind, f"{kind}/{model}", None   # explicit, so LiteLLM does not pick Vertex for gemini-*
    return "openai", f"openai/{model}", None


def _mock_value(name: str) -> str:
    return "mock-" + name.lower().replace("_", "-")


def _envs_to_mocks(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _envs_to_mocks(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_envs_to_mocks(v) for v in node]
    if isinstance(node, str) and node.startswith("os.environ/"):
        return _mock_value(node.split("/", 1)[1])
    return node


def _chains(entries: Any) -> dict[str, list[str]]:
    """LiteLLM's `[{model: [fallback, ...]}, ...]` as one mapping."""
    out: dict[str, list[str]] = {}
    for item in entries or []:
        if isinstance(item, dict):
            for head, chain in item.items():
                out.setdefault(str(head), []).extend(str(c) for c in (chain if isinstance(chain, list) else [chain]))
    return out


def _number(*values: Any) -> Optional[float]:
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def convert(team: dict[str, Any], source: str, template_name: str, keep_redis: bool = False) -> tuple[dict, str]:
    """(the harness.yaml as data, the config template's text). `source` names the team's file in
    promises.sources and in errors."""
    if not isinstance(team, dict) or not isinstance(team.get("model_list"), list) or not team["model_list"]:
        raise ConfigError(f"{source}: model_list: a LiteLLM proxy config needs a non-empty model_list")
    conf = copy.deepcopy(team)
    router = conf.setdefault("router_settings", {}) or {}
    lset = conf.setdefault("litellm_settings", {}) or {}
    general = conf.setdefault("general_settings", {}) or {}
    conf["router_settings"], conf["litellm_settings"], conf["general_settings"] = router, lset, general
    notes: list[str] = []

    providers: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    for i, dep in enumerate(conf["model_list"]):
        where = f"{source}: model_list[{i}]"
        if not isinstance(dep, dict) or not dep.get("model_name") or not isinstance(dep.get("litellm_params"), dict):
            raise ConfigError(f"{where}: each deployment needs model_name and litellm_params")
        params = dep["litellm_params"]
        if not isinstance(params.get("model"), str):
            raise ConfigError(f"{where}.litellm_params.model: the provider/model string is missing")
        kind, model, why = _kind(params["model"])
        name = f"{kind}-{i + 1}"
        providers.append({"name": name, "kind": kind})
        if why:
            notes.append(f"model_list[{i}] ({dep['model_name']}): {why}")
        rest = {k: v for k, v in _envs_to_mocks(params).items() if k not in ("model", "api_base", "api_key", "base_url")}
        dep["litellm_params"] = {"model": model, "api_base": f"{SLOT}url:{name}{SLOT}{API_BASE[kind]}",
                                 **({"api_key": f"sk-mock-upstream-{name}"} if kind != "ollama" else {}), **rest}
        group = str(dep["model_name"])
        if group not in seen:   # a group with several deployments: the harness follows its first one
            seen[group] = {"name": group, "provider": name, "upstream_model": model.split("/", 1)[1]}
            models.append(seen[group])
            seen[group]["_params"] = dep["litellm_params"]

    # Everything else that reads the environment or reaches outside this machine.
    for section in (router, lset, general):
        for k in list(section):
            if isinstance(section[k], str) and section[k].startswith("os.environ/") and k != "master_key":
                section[k] = _mock_value(section[k].split("/", 1)[1])
    general["master_key"] = f"{SLOT}key{SLOT}"
    for k in ("database_url", "database_connection_pool_limit", "alerting", "alerting_threshold"):
        if general.pop(k, None) is not None:
            notes.append(f"general_settings.{k}: dropped (no database or alerting in a harness run)")
    for k in REMOTE_CALLBACKS:
        if lset.pop(k, None) is not None:
            notes.append(f"litellm_settings.{k}: dropped (callbacks reach outside this machine)")
    if not keep_redis:
        cp = lset.get("cache_params")
        if isinstance(cp, dict) and cp.get("type") in ("redis", "redis-semantic", "qdrant-semantic", "s3"):
            notes.append(f"litellm_settings.cache_params.type: {cp['type']} -> local (no Redis in a harness run)")
            lset["cache_params"] = {k: v for k, v in cp.items() if k in ("ttl", "supported_call_types", "namespace")}
            lset["cache_params"]["type"] = "local"
        for k in [k for k in router if k.startswith("redis_")]:
            router.pop(k)
            notes.append(f"router_settings.{k}: dropped (router state kept in memory, no Redis)")
    lset.setdefault("telemetry", False)

    # -- promises, each with the setting it came from -----------------------------------------
    names = [m["name"] for m in models]
    sources: dict[str, str] = {}
    chains: dict[str, dict[str, list[str]]] = {}
    fallbacks: dict[str, list[str]] = {}
    for kind in FALLBACK_KINDS:
        for section_name, section in (("router_settings", router), ("litellm_settings", lset)):
            c = _chains(section.get(kind))
            if c:
                chains[kind] = c
                for head, chain in c.items():
                    fallbacks.setdefault(head, [])
                    fallbacks[head] += [m for m in chain if m not in fallbacks[head]]
                sources["fallbacks"] = ", ".join(filter(None, [sources.get("fallbacks"), f"{source}: {section_name}.{kind}"]))
    aliases = router.get("model_group_alias") or {}
    for alias, target in aliases.items():
        target = target.get("model") if isinstance(target, dict) else target
        if target in seen and alias not in seen:
            models.append({"name": alias, "provider": seen[target]["provider"], "upstream_model": seen[target]["upstream_model"]})
            sources["aliases"] = f"{source}: router_settings.model_group_alias"
    promises: dict[str, Any] = {"fallbacks": fallbacks,
                                "failover": {"preset": "provider-faults", "reports_model": "answering",
                                             "metadata_header": "x-litellm-model-api-base"}}
    retries = _number(router.get("num_retries"), lset.get("num_retries"))
    promises["retries"] = {"count": int(retries or 0), "on_status": [408, 429, 500, 502, 503, 504],
                           "honors_retry_after": False}
    sources["retries"] = (f"{source}: " + ("router_settings.num_retries" if "num_retries" in router else
                          "litellm_settings.num_retries" if "num_retries" in lset else "not set: LiteLLM's router retries 0 times"))

    def params_of(name: str) -> dict[str, Any]:
        return next((m["_params"] for m in models if m["name"] == name and "_params" in m), {})

    general_chains = chains.get("fallbacks", {})
    failover = next((h for h, c in general_chains.items() if h in names and c and all(x in names for x in c)), None)
    timeout_model = next((n for n in names if params_of(n).get("timeout")), None) or failover
    timeout = _number(params_of(timeout_model).get("timeout") if timeout_model else None, router.get("timeout"),
                      lset.get("request_timeout"))
    if timeout:
        promises["request_timeout_s"] = timeout
        sources["request_timeout_s"] = f"{source}: " + ("model_list litellm_params.timeout" if timeout_model and
                                                       params_of(timeout_model).get("timeout") else
                                                       "router_settings.timeout / litellm_settings.request_timeout")
    stream_timeout = _number(params_of(timeout_model).get("stream_timeout") if timeout_model else None,
                             router.get("stream_timeout"))
    if stream_timeout:
        promises["stream_timeout_s"] = stream_timeout
        sources["stream_timeout_s"] = f"{source}: stream_timeout"
    allowed = _number(router.get("allowed_fails"))
    cooldown = _number(router.get("cooldown_time"))
    if allowed is not None and cooldown:
        promises["breaker"] = {"opens_after": int(allowed) + 1, "cooldown_s": cooldown, "half_open": False, "counts": "window"}
        sources["breaker"] = f"{source}: router_settings.allowed_fails, cooldown_time"
    rpms = Counter(int(params_of(n)["rpm"]) for n in names if isinstance(params_of(n).get("rpm"), int))
    rate_models: list[str] = []
    if rpms:
        rpm = rpms.most_common(1)[0][0]
        rate_models = [n for n in names if params_of(n).get("rpm") == rpm]
        promises["rate_limit"] = {"rpm": rpm, "window_s": 60, "status": 429}
        sources["rate_limit"] = f"{source}: model_list litellm_params.rpm"
    if lset.get("cache"):
        ttl = _number((lset.get("cache_params") or {}).get("ttl")) or 600
        promises["cache"] = {"ttl_s": ttl}
        sources["cache"] = f"{source}: litellm_settings.cache, cache_params.ttl"
    if sources:
        promises["sources"] = {k: v for k, v in sources.items() if k != "aliases"}

    for m in models:
        m.pop("_params", None)
    kind_of = {p["name"]: p["kind"] for p in providers}
    roles: dict[str, Any] = {}
    if failover:
        roles["failover"] = failover
    plain = [n for n in names if n not in fallbacks]
    if plain or failover:
        roles["retry"] = plain[0] if plain else failover
    if timeout_model:
        roles["timeout"] = timeout_model
    if rate_models:
        roles["rate_limit"] = rate_models
    if "cache" in promises and len(names) >= 1:
        roles["cache"] = names[0]
        if len(names) > 1:
            roles["cache_other"] = names[1]
    defaults = {k: next((m["name"] for m in models if kind_of[m["provider"]] == kind), None)
                for k, kind in (("openai_model", "openai"), ("anthropic_model", "anthropic"))}

    harness = {
        "version": 1,
        "target": {
            "name": "litellm-proxy",
            "install": "pip install 'llm-gateway-harness[proxy]' (the LiteLLM proxy beside the harness)",
            "version": {"package": "litellm"},
            "start": {"command": ["{{ bin_dir }}/litellm", "--config", "{{ config_path }}", "--host", "127.0.0.1",
                                  "--port", "{{ port }}", "--num_workers", "1"],
                      "config_template": template_name,
                      "env": {"LITELLM_OFFLINE_MODE": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "true",
                              "LITELLM_LOG": "ERROR", "DISABLE_SCHEMA_UPDATE": "true"},
                      "ready_path": "/health/liveliness", "ready_timeout_s": 120},
            "auth": {"header": "Authorization", "scheme": "Bearer", "key": "generate"},
            "paths": {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages",
                      "models": "/v1/models", "health": "/health/readiness"},
            "protocols": ["openai_chat", "openai_responses", "anthropic_messages"],
        },
        "providers": providers,
        "models": models,
        "defaults": {k: v for k, v in defaults.items() if v},
        "roles": roles,
        "promises": promises,
    }
    parse(harness, f"{source} (as a harness.yaml)")   # what we write must load
    header = (f"# {Path(source).name} as a harness config template, written by `harness init --from-litellm`.\n"
              "# The team's file as it is, but for: api_base -> the harness's mock providers, keys -> mock keys,\n"
              "# the master key -> the run's generated key"
              + ("" if keep_redis else ", Redis -> local") + ".\n"
              + "".join(f"#   {n}\n" for n in notes))
    # The team's text stays literal ({% raw %}, should it hold {{ or {%); only the slots are template.
    text = yaml.safe_dump(conf, sort_keys=False, allow_unicode=True, width=120)
    text = re.sub(re.escape(SLOT) + r"url:([A-Za-z0-9_.-]+)" + re.escape(SLOT),
                  lambda mm: "{% endraw %}{{ providers['" + mm.group(1) + "'].url }}{% raw %}", text)
    text = text.replace(f"{SLOT}key{SLOT}", "{% endraw %}{{ gateway_key }}{% raw %}")
    return harness, header + "{% raw %}" + text + "{% endraw %}\n"


def write(config: Path, out: Path, keep_redis: bool = False) -> tuple[Path, Path, dict]:
    """Reads the team's LiteLLM config, writes the harness.yaml and its config template beside it."""
    try:
        team = yaml.safe_load(config.read_text())
    except OSError as exc:
        raise ConfigError(f"{config}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{config}{at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    template = out.with_name(f"{out.stem}.litellm-config.yaml.j2")
    harness, text = convert(team, str(config), template.name, keep_redis)
    out.parent.mkdir(parents=True, exist_ok=True)
    template.write_text(text)
    out.write_text(f"# Written by `harness init --from-litellm {config}`: a harness.yaml for that LiteLLM config.\n"
                   "# Promises were read from the file (promises.sources says from where); edit freely.\n"
                   + yaml.safe_dump(harness, sort_keys=False, width=120))
    return out, template, harness
