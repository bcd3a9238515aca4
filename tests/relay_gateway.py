"""A tiny relay gateway: test equipment for the load lane's per-hop attribution, never a target.

It forwards every POST to one upstream (a mock provider) as it is and streams the answer back
chunk by chunk, adding a scripted delay on the way in (before it forwards the request) and on the
way out (before it passes the first chunk of the answer on). It runs its own event loop in a
thread, on a free loopback port, and `stop()` closes the listener, the connections and the thread.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Optional

import aiohttp
from aiohttp import web


class Relay:
    def __init__(self, upstream: str, in_delay_ms: float = 0, out_delay_ms: float = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.in_delay_s, self.out_delay_s = in_delay_ms / 1000, out_delay_ms / 1000
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="relay-gateway", daemon=True)
        self._runner: Optional[web.AppRunner] = None
        self._session: Optional[aiohttp.ClientSession] = None

    def __enter__(self) -> "Relay":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        # No connection limit: the load tests open dozens of streams at once through it.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                              timeout=aiohttp.ClientTimeout(total=60))
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._relay)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.in_delay_s:
            await asyncio.sleep(self.in_delay_s)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")}
        async with self._session.post(self.upstream + request.path, data=body, headers=headers) as up:
            resp = web.StreamResponse(status=up.status, headers={"Content-Type": up.headers.get("Content-Type", "")})
            await resp.prepare(request)
            first = True
            async for chunk in up.content.iter_any():   # as it comes, never re-chunked
                if first and self.out_delay_s:
                    await asyncio.sleep(self.out_delay_s)
                first = False
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def stop(self) -> None:
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
