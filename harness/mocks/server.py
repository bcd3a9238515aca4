"""Runs the mock providers: one aiohttp app per provider, each on its own loopback port.

Run as a process of its own (`python -m harness.mocks SPEC_JSON`) so that the harness, its
pytest workers and a load generator never compete with it for the same interpreter. When every
provider is listening it prints one line, `READY {json}`, with the bound ports.
"""
from __future__ import annotations

import asyncio
import json
import random
import os
import signal
import stat
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from harness.mocks import anthropic_api, gemini_api, ollama_api, openai_api, realtime_api
from harness.mocks.exchange import begin
from harness.mocks.journal import Journal
from harness.mocks.script import Rule, Script

CONTROL = "/__harness"
KINDS = ("openai", "anthropic", "gemini", "ollama")


@dataclass
class ProviderSpec:
    name: str
    kind: str = "openai"
    port: int = 0
    models: list[str] = field(default_factory=list)   # what /v1/models lists; empty = accept any
    seed: int = 0


class Provider:
    def __init__(self, spec: ProviderSpec) -> None:
        if spec.kind not in KINDS:
            raise ValueError(f"unknown provider kind {spec.kind!r}; known: {', '.join(KINDS)}")
        self.spec = spec
        self.script = Script()
        self.journal = Journal(spec.name)
        self.rng = random.Random(spec.seed)
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get(f"{CONTROL}/ping", self._ping)
        app.router.add_post(f"{CONTROL}/script", self._add_rules)
        app.router.add_get(f"{CONTROL}/script", self._list_rules)
        app.router.add_delete(f"{CONTROL}/script", self._clear_rules)
        app.router.add_get(f"{CONTROL}/journal", self._get_journal)
        app.router.add_delete(f"{CONTROL}/journal", self._clear_journal)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/models", self._models)
        if self.spec.kind == "openai":
            shape = openai_api.error_shape
            for prefix in ("/v1", ""):  # gateways differ on whether api_base carries /v1
                app.router.add_post(f"{prefix}/chat/completions", self._route(openai_api.chat_completions, shape))
                app.router.add_post(f"{prefix}/responses", self._route(openai_api.responses, shape))
            app.router.add_get("/v1/realtime", self._realtime)
        elif self.spec.kind == "anthropic":
            app.router.add_post("/v1/messages", self._route(anthropic_api.messages, anthropic_api.error_shape))
        elif self.spec.kind == "gemini":
            for version in ("/v1beta", "/v1"):
                app.router.add_post(version + "/models/{name}", self._gemini)
        else:
            app.router.add_post("/api/chat", self._route(ollama_api.chat, ollama_api.error_shape))
            app.router.add_get("/api/tags", self._ollama_tags)
        return app

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        model, method = gemini_api.split_path(request.match_info["name"])
        if method not in ("generateContent", "streamGenerateContent"):
            return web.json_response(gemini_api.error_shape(404, f"unknown method {method!r}"), status=404)
        stream = method == "streamGenerateContent"
        if stream and request.query.get("alt") != "sse":
            # Without alt=sse Gemini streams one JSON array; the mock speaks only the SSE form.
            return web.json_response(gemini_api.error_shape(400, "the mock streams with alt=sse only"), status=400)
        ex = await begin(request, self.journal, self.script, self.rng, gemini_api.error_shape, model=model, stream=stream)
        return await gemini_api.generate(ex, model, stream)

    async def _ollama_tags(self, request: web.Request) -> web.Response:
        return web.json_response(ollama_api.tags_payload(self.spec.models))

    def _route(self, handler: Callable[..., Awaitable[web.StreamResponse]], shape: Callable[[int, str], Any]):
        async def serve(request: web.Request) -> web.StreamResponse:
            ex = await begin(request, self.journal, self.script, self.rng, shape)
            return await handler(ex)
        return serve

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        return await realtime_api.session(request, self.journal, self.script)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(openai_api.models_payload(self.spec.models))

    # -- control API (never journaled, never scripted) -----------------------------------------
    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({"provider": self.spec.name, "kind": self.spec.kind})

    async def _add_rules(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            items = data["rules"] if isinstance(data, dict) and "rules" in data else [data]
            rules = [self.script.add(Rule.from_json(item)) for item in items]
        except (ValueError, TypeError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ids": [r.id for r in rules]})

    async def _list_rules(self, request: web.Request) -> web.Response:
        return web.json_response({"rules": self.script.rules()})

    async def _clear_rules(self, request: web.Request) -> web.Response:
        return web.json_response({"removed": self.script.clear(request.query.get("tag"))})

    async def _get_journal(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since_seq", "0"))
        return web.json_response({"entries": self.journal.query(request.query.get("tag"), since)})

    async def _clear_journal(self, request: web.Request) -> web.Response:
        self.journal.clear()
        return web.json_response({"ok": True})


async def serve(specs: list[ProviderSpec], host: str = "127.0.0.1") -> tuple[list[web.AppRunner], dict[str, int]]:
    runners, ports = [], {}
    for spec in specs:
        provider = Provider(spec)
        runner = web.AppRunner(provider.app, access_log=None, handle_signals=False,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, spec.port, backlog=4096, reuse_address=True)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]  # the port really bound for :0
        ports[spec.name] = sock.getsockname()[1]
        runners.append(runner)
    return runners, ports


async def _main(specs: list[ProviderSpec], host: str) -> None:
    runners, ports = await serve(specs, host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_because(why: str) -> None:
        print(f"mock providers: stopping: {why}", file=sys.stderr, flush=True)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_because, signal.Signals(sig).name)
    print("READY " + json.dumps({"host": host, "ports": ports}), flush=True)
    if _stdin_is_pipe():
        # The parent may die without telling us; its end of our stdin closing is how we notice.
        def on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 4096):
                loop.remove_reader(sys.stdin.fileno())
                stop_because("the parent closed our stdin")
        loop.add_reader(sys.stdin.fileno(), on_stdin)
    await stop.wait()
    for runner in runners:
        await runner.cleanup()


def _stdin_is_pipe() -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m harness.mocks '{\"providers\": [{\"name\": \"openai-a\", \"kind\": \"openai\"}]}'",
              file=sys.stderr)
        return 2
    data = json.loads(argv[0])
    specs = [ProviderSpec(**p) for p in data["providers"]]
    asyncio.run(_main(specs, data.get("host", "127.0.0.1")))
    return 0
