"""Where a request for a model goes on the gateway, and what it carries: the target's paths and
headers, and each model's own, rendered as jinja2 templates once the providers' addresses are known.

A gateway that routes by model name needs none of this (its paths are plain strings); one that routes
by URL (a profile in the path) or by header says so in harness.yaml, never in code:

    target:
      paths: {chat: "/{{ model.name }}/harness/v1/chat/completions"}
      headers: {X-Team: harness}
    models:
      - {name: gpt-mock, provider: openai-a, headers: {X-Upstream: "{{ provider.url }}"}}
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

import jinja2

from harness.config import HarnessConfig, ModelCfg

KINDS = ("chat", "responses", "messages", "models", "realtime", "health")
_env = jinja2.Environment(undefined=jinja2.StrictUndefined)


@lru_cache(maxsize=512)
def _template(text: str) -> jinja2.Template:
    return _env.from_string(text)


class RouteError(ValueError):
    """A path or header template that cannot be rendered: the harness.yaml's fault, named."""


class Routes:
    def __init__(self, cfg: HarnessConfig, providers: Optional[dict[str, dict[str, Any]]] = None) -> None:
        """`providers`: name -> {name, kind, url} as the world started them (without them, provider
        URLs render as empty strings: enough for what needs no address)."""
        self.cfg = cfg
        self.providers = providers or {p.name: {"name": p.name, "kind": p.kind, "url": ""} for p in cfg.providers}

    def _model(self, model: Optional[str]) -> Optional[ModelCfg]:
        name = model or self.cfg.default_model("openai") or (self.cfg.models[0].name if self.cfg.models else None)
        return next((m for m in self.cfg.models if m.name == name), None)

    def _render(self, text: str, m: Optional[ModelCfg], what: str) -> str:
        if "{" not in text:
            return text
        ctx = {"model": m, "provider": self.providers.get(m.provider) if m else None, "providers": self.providers}
        try:
            return _template(text).render(**ctx)
        except jinja2.TemplateError as exc:
            raise RouteError(f"{what}: template {text!r}: {exc}") from None

    def path(self, kind: str, model: Optional[str] = None) -> str:
        """The gateway path for a request of `kind` (chat, responses, messages, models, realtime) for
        `model`; a request that names no model is routed as the default OpenAI model's."""
        m = self._model(model)
        if m is not None and kind in m.paths:
            return self._render(m.paths[kind], m, f"models[{m.name}].paths.{kind}")
        return self._render(getattr(self.cfg.target.paths, kind), m, f"target.paths.{kind}")

    def target_headers(self) -> dict[str, str]:
        """Headers every request of the target carries (rendered for the default model)."""
        m = self._model(None)
        return {k: self._render(v, m, f"target.headers.{k}") for k, v in self.cfg.target.headers.items()}

    def model_headers(self, model: Optional[str]) -> dict[str, str]:
        """The headers a request for `model` carries beyond the target's own."""
        m = next((x for x in self.cfg.models if x.name == model), None) if model else None
        if m is None:
            return {}
        return {k: self._render(v, m, f"models[{m.name}].headers.{k}") for k, v in m.headers.items()}

    def check(self) -> None:
        """Renders every path and header once for every model: a template error shows before anything runs."""
        self.target_headers()
        for m in self.cfg.models:
            for kind in KINDS:
                self.path(kind, m.name)
            self.model_headers(m.name)
