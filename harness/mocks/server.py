"""Runs the mock providers: one aiohttp app per provider, each on its own loopback port.

Run as a process of its own (`python -m harness.mocks SPEC_JSON`) so that the harness, its
pytest workers and a load generator never compete with it for the same interpreter. When every
provider is listening it prints one line, `READY {json}`, with the bound ports.
"""
from __future__ import annotations

import asyncio
import gc
import json
import random
import os
import signal
import stat
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from harness.mocks import anthropic_api, gemini_api, local_openai_api, ollama_api, openai_api, realtime_api
from harness.mocks.exchange import Exchange, Route, begin
from harness.mocks.journal import Journal
from harness.mocks.script import Rule, Script

CONTROL = "/__harness"
# Provider shapes: the four APIs, and the OpenAI-compatible local servers (llama.cpp, vLLM).
KINDS = ("openai", "anthropic", "gemini", "ollama", *local_openai_api.FLAVOURS)
ERROR_SHAPES = {"openai": openai_api.error_shape, "anthropic": anthropic_api.error_shape,
                "gemini": gemini_api.error_shape, "ollama": ollama_api.error_shape,
                **{f: local_openai_api.error_shape_of(f) for f in local_openai_api.FLAVOURS}}


@dataclass
class ProviderSpec:
    name: str
    kind: str = "openai"
    port: int = 0
    models: list[str] = field(default_factory=list)   # what the catalog routes list; empty = accept any
    seed: int = 0


def routes_of(kind: str, models: list[str]) -> list[Route]:
    """Every route a provider of this shape serves; anything else is answered as not served."""
    if kind == "openai":
        return openai_api.routes(openai_api.OPENAI, models)
    if kind == "anthropic":
        return anthropic_api.routes(models)
    if kind == "gemini":
        return gemini_api.routes(models)
    if kind == "ollama":
        return ollama_api.routes(models)
    return local_openai_api.routes(kind, models)


class Provider:
    """One mock provider: its routes, fault script, journal and random source (exchange.Host)."""

    def __init__(self, spec: ProviderSpec) -> None:
        if spec.kind not in KINDS:
            raise ValueError(f"unknown provider kind {spec.kind!r}; known: {', '.join(KINDS)}")
        self.spec = spec
        self.name, self.kind = spec.name, spec.kind
        self.script = Script()
        self.journal = Journal(spec.name)
        self.rng = random.Random(spec.seed)
        self.app = self._build_app()

    def error_shape(self, status: int, message: str) -> Any:
        return ERROR_SHAPES[self.kind](status, message)

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get(f"{CONTROL}/ping", self._ping)
        app.router.add_post(f"{CONTROL}/script", self._add_rules)
        app.router.add_get(f"{CONTROL}/script", self._list_rules)
        app.router.add_delete(f"{CONTROL}/script", self._clear_rules)
        app.router.add_get(f"{CONTROL}/journal", self._get_journal)
        app.router.add_delete(f"{CONTROL}/journal", self._clear_journal)
        app.router.add_get(f"{CONTROL}/timings", self._get_timings)
        if self.kind == "openai":
            app.router.add_get("/v1/realtime", self._realtime)
        for route in routes_of(self.kind, self.spec.models):
            app.router.add_route(route.method, route.path, self._serve(route))
        # Last: whatever no route above took is a route this mock does not serve (journaled, 404).
        app.router.add_route("*", "/{tail:.*}", self._not_served)
        return app

    def _serve(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            ex = await begin(request, self, route)
            return await route.handler(ex)
        return serve

    async def _not_served(self, request: web.Request) -> web.StreamResponse:
        ex: Exchange = await begin(request, self)
        return ex.not_served()

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        return await realtime_api.session(request, self.journal, self.script)

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
        served = request.query.get("served")   # "0": only requests on routes the mock does not serve
        return web.json_response({"entries": self.journal.query(request.query.get("tag"), since,
                                                                None if served is None else served == "1",
                                                                float(request.query.get("since_t", "0")),
                                                                int(request.query.get("last", "0")) or None)})

    async def _get_timings(self, request: web.Request) -> web.Response:
        return web.json_response({"clock": "CLOCK_MONOTONIC", "now_ns": time.monotonic_ns(),
                                  "entries": self.journal.timings(int(request.query.get("since_seq", "0")))})

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


def quiet_gc() -> None:
    """Keeps the garbage collector's pauses out of the scripted timings. A full collection scans
    every live object while every stream waits: at 1,000 streams (their connections and tasks, the
    journal) one took 22-74 ms of CPU, 70-250 ms on the shared machine, two or three times a run,
    and first tokens were late by as much. What was loaded at startup is frozen out of the scans,
    and a collection waits for 20,000 new objects rather than 700, as in the generator
    (harness/load/locustfile.py). What a request leaves behind is freed by reference counting: a
    full collection in a load run found 0-6 unreachable objects, and 75,000 connections opened and closed (one
    request each) left the mock as large as with the default thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


async def _main(specs: list[ProviderSpec], host: str) -> None:
    runners, ports = await serve(specs, host)
    quiet_gc()
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
    run_loop(_main(specs, data.get("host", "127.0.0.1")))
    return 0


def run_loop(main: Awaitable[None]) -> None:
    """uvloop where it exists (not on Windows): at 1,000 scripted streams the mock's first tokens
    were late by its event loop's lag on asyncio's loop (benchmarks/load_generator.py: the provider
    hop's p99 517-530 ms for 500 scripted, TTFT p99 x1.08-1.11); on uvloop 502-509 ms, x1.03."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
