"""The Toxiproxy v2 HTTP API over our proxies: same paths, JSON shapes and status codes.

So scenarios run unchanged against a real Toxiproxy server (`chaos.toxiproxy_url`). Beyond it:
`--seed` makes every random choice (jitter, toxicity, slicing, loss) reproducible, and proxies
only ever listen on, and connect to, loopback addresses.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from typing import Any, Awaitable, Callable

from aiohttp import web

from harness.chaos.proxy import ERRORS, NETWORK_ERRORS, Proxy, check_loopback
from harness.chaos.toxics import Toxic, ToxicError

VERSION = "2.12.0-harness"   # the Toxiproxy API version we follow


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


def _guard(fn: Callable[..., Awaitable[web.StreamResponse]]):
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except ToxicError as exc:
            return _error(str(exc), exc.status)
    return handler


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except ValueError as exc:
        raise ToxicError(f"bad request body: {exc}") from None


class Api:
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_post("/reset", _guard(self.reset))
        r.add_get("/proxies", _guard(self.index))
        r.add_post("/proxies", _guard(self.create))
        r.add_post("/populate", _guard(self.populate))
        r.add_get("/proxies/{proxy}", _guard(self.show))
        r.add_route("POST", "/proxies/{proxy}", _guard(self.update))
        r.add_route("PATCH", "/proxies/{proxy}", _guard(self.update))
        r.add_delete("/proxies/{proxy}", _guard(self.delete))
        r.add_get("/proxies/{proxy}/toxics", _guard(self.toxics))
        r.add_post("/proxies/{proxy}/toxics", _guard(self.toxic_create))
        r.add_get("/proxies/{proxy}/toxics/{toxic}", _guard(self.toxic_show))
        r.add_route("POST", "/proxies/{proxy}/toxics/{toxic}", _guard(self.toxic_update))
        r.add_route("PATCH", "/proxies/{proxy}/toxics/{toxic}", _guard(self.toxic_update))
        r.add_delete("/proxies/{proxy}/toxics/{toxic}", _guard(self.toxic_delete))
        r.add_get("/version", _guard(self.version))
        r.add_get("/errors", _guard(self.errors))   # ours: the proxy's own failures (Toxiproxy has no such path)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _shutdown(self, app: web.Application) -> None:
        for p in list(self.proxies.values()):
            await p.stop()

    def _get(self, request: web.Request) -> Proxy:
        proxy = self.proxies.get(request.match_info["proxy"])
        if proxy is None:
            raise ToxicError("proxy not found", status=404)
        return proxy

    async def _make(self, data: Any) -> Proxy:
        if not isinstance(data, dict):
            raise ToxicError("bad request body: a proxy is a JSON object")
        for f in ("name", "upstream"):
            if not data.get(f):
                raise ToxicError(f"missing required field: {f}")
        if data["name"] in self.proxies:
            raise ToxicError("proxy already exists", status=409)
        proxy = Proxy(data["name"], data.get("listen") or "127.0.0.1:0", data["upstream"], seed=self.seed)
        if data.get("enabled", True):
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def reset(self, request: web.Request) -> web.Response:
        async with self.lock:
            for p in self.proxies.values():
                await p.start()
                p.reset_toxics()
        return web.Response(status=204)

    async def index(self, request: web.Request) -> web.Response:
        return web.json_response({name: p.to_json() for name, p in self.proxies.items()})

    async def create(self, request: web.Request) -> web.Response:
        data = await _body(request)
        async with self.lock:
            proxy = await self._make(data)
        return web.json_response(proxy.to_json(), status=201)

    async def populate(self, request: web.Request) -> web.Response:
        data = await _body(request)
        if isinstance(data, dict) and "proxies" in data:
            data = data["proxies"]
        if not isinstance(data, list):
            raise ToxicError("bad request body: populate takes a list of proxies")
        made: list[Proxy] = []
        async with self.lock:
            for item in data:
                try:
                    old = self.proxies.get(item.get("name")) if isinstance(item, dict) else None
                    if old is not None:   # create or replace
                        await old.stop()
                        del self.proxies[old.name]
                    made.append(await self._make(item))
                except ToxicError as exc:
                    return web.json_response({"error": str(exc), "status": exc.status,
                                              "proxies": [p.to_json() for p in made]}, status=exc.status)
        return web.json_response({"proxies": [p.to_json() for p in made]}, status=201)

    async def show(self, request: web.Request) -> web.Response:
        return web.json_response(self._get(request).to_json())

    async def update(self, request: web.Request) -> web.Response:
        data = await _body(request)
        if not isinstance(data, dict):
            raise ToxicError("bad request body: a proxy is a JSON object")
        async with self.lock:
            proxy = self._get(request)
            moved = ("listen" in data and data["listen"] != proxy.listen) or (
                "upstream" in data and data["upstream"] != proxy.upstream)
            enabled = data.get("enabled", proxy.enabled)
            if moved:
                await proxy.stop()
                if "upstream" in data:
                    check_loopback(data["upstream"], "upstream")
                    proxy.upstream = data["upstream"]
                proxy.listen = data.get("listen", proxy.listen)
            if enabled:
                await proxy.start()   # re-enabling binds the same address again
            else:
                await proxy.stop()
        return web.json_response(proxy.to_json())

    async def delete(self, request: web.Request) -> web.Response:
        async with self.lock:
            proxy = self._get(request)
            await proxy.stop()
            del self.proxies[proxy.name]
        return web.Response(status=204)

    async def toxics(self, request: web.Request) -> web.Response:
        return web.json_response([t.to_json() for t in self._get(request).toxics.values()])

    async def toxic_create(self, request: web.Request) -> web.Response:
        proxy = self._get(request)
        toxic = Toxic.from_json(await _body(request))
        proxy.add_toxic(toxic)
        return web.json_response(toxic.to_json())

    def _toxic(self, request: web.Request) -> tuple[Proxy, Toxic]:
        proxy = self._get(request)
        toxic = proxy.toxics.get(request.match_info["toxic"])
        if toxic is None:
            raise ToxicError("toxic not found", status=404)
        return proxy, toxic

    async def toxic_show(self, request: web.Request) -> web.Response:
        return web.json_response(self._toxic(request)[1].to_json())

    async def toxic_update(self, request: web.Request) -> web.Response:
        proxy, toxic = self._toxic(request)
        toxic.update(await _body(request))
        return web.json_response(toxic.to_json())

    async def toxic_delete(self, request: web.Request) -> web.Response:
        self._get(request).remove_toxic(request.match_info["toxic"])
        return web.Response(status=204)

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": VERSION})

    async def errors(self, request: web.Request) -> web.Response:
        """How often the proxy itself failed (not the network, not a toxic), and the last few times:
        a scenario that ran through a failure is not judged (harness/checks/chaos.py)."""
        return web.json_response(ERRORS.to_json())


async def serve(host: str, port: int, seed: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(Api(seed).app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.chaos",
                                description="A fault proxy speaking the Toxiproxy v2 HTTP API (loopback only).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8474)
    p.add_argument("--seed", type=int, default=0, help="makes jitter, toxicity, slicing and loss reproducible")
    args = p.parse_args(argv)
    # stderr is the fault proxy's log (logs/fault-proxy.log in a run)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        # Whatever escaped every guard (a callback, a task nobody awaited) is a failure of the proxy too.
        exc = context.get("exception")
        if exc is None or isinstance(exc, NETWORK_ERRORS):   # a peer went away: the network's doing
            loop.default_exception_handler(context)
            return
        ERRORS.record(f"event loop: {context.get('message', '')}", exc)

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(on_loop_error)
        runner, port = await serve(args.host, args.port, args.seed)
        print(f"READY {json.dumps({'port': port})}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        from harness.mocks.server import _stdin_is_pipe
        if _stdin_is_pipe():   # our parent went away: so do we
            import os
            loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 4096) else None)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(run())
    return 0
