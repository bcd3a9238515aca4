"""A tiny OpenAI-style gateway run as a process of its own: test equipment for the process checks
(harness/checks/process.py, resources.py), which kill and restart, or measure, what they judge. It
forwards /v1/chat/completions to one provider, keeps a state directory as real gateways do (a lock
file, a spool of requests in flight), drains on SIGTERM and keeps nothing of a request once it is
answered; each switch breaks one of these promises:

  stale_lock      refuses to start while the lock of a killed instance is left behind
  replay          at start, sends the spooled requests of the killed instance again (billed twice)
  sigterm_cuts    exits at once on SIGTERM, cutting the requests in flight
  ignores_sigterm keeps running after SIGTERM
  leak_fds        leaves a file open per request
  leak_threads    leaves a thread per request, sleeping forever
  leak_memory     keeps each request's body and 200 KiB more

python tests/process_gateway.py --port N --upstream URL --state DIR [--break SWITCH ...]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web

SWITCHES = {"stale_lock", "replay", "sigterm_cuts", "ignores_sigterm", "leak_fds", "leak_threads", "leak_memory"}
DRAIN_S = 30.0
LEAKED_BYTES = 200 * 1024   # kept per request by leak_memory, random so that every page is really resident


class Gateway:
    def __init__(self, upstream: str, state: Path, breaks: set[str]) -> None:
        self.upstream, self.state, self.breaks = upstream, state, breaks
        self.spool = state / "spool"
        self.in_flight = 0
        self.session: aiohttp.ClientSession | None = None
        self.kept: list[bytes] = []   # leak_memory's hoard

    def leak(self, body: bytes) -> None:
        """What the leak switches keep of a request: never released while the process lives."""
        if "leak_fds" in self.breaks:
            os.open(os.devnull, os.O_RDONLY)   # a bare descriptor: no object whose collection would close it
        if "leak_threads" in self.breaks:
            threading.Thread(target=threading.Event().wait, daemon=True).start()
        if "leak_memory" in self.breaks:
            self.kept += [body, os.urandom(LEAKED_BYTES)]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", lambda r: web.json_response({"status": "ok"}))
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        body = await request.read()
        self.leak(body)
        spooled = self.spool / f"{uuid.uuid4().hex}.json"
        spooled.write_bytes(body)
        try:
            assert self.session is not None
            async with self.session.post(self.upstream + "/v1/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"}) as up:
                resp = web.StreamResponse(status=up.status, headers={"Content-Type": up.headers.get("Content-Type", "")})
                await resp.prepare(request)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        finally:
            spooled.unlink(missing_ok=True)
            self.in_flight -= 1

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        pending = sorted(self.spool.glob("*.json")) if self.spool.exists() else []
        self.spool.mkdir(parents=True, exist_ok=True)
        for f in pending:   # what the killed instance had in flight: its callers are gone
            if "replay" in self.breaks:
                async with self.session.post(self.upstream + "/v1/chat/completions", data=f.read_bytes(),
                                             headers={"Content-Type": "application/json"}) as up:
                    await up.read()
            f.unlink(missing_ok=True)

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_S
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.05)


async def main(port: int, upstream: str, state: Path, breaks: set[str]) -> int:
    state.mkdir(parents=True, exist_ok=True)
    lock = state / "gateway.lock"
    if lock.exists() and "stale_lock" in breaks:
        print(f"another instance holds {lock}", file=sys.stderr)
        return 1
    lock.write_text(str(os.getpid()))
    gw = Gateway(upstream, state, breaks)
    await gw.start()
    runner = web.AppRunner(gw.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if "ignores_sigterm" in breaks:
        loop.add_signal_handler(signal.SIGTERM, lambda: None)
    elif "sigterm_cuts" in breaks:
        loop.add_signal_handler(signal.SIGTERM, lambda: os._exit(0))
    else:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(json.dumps({"listening": port}), flush=True)
    await stop.wait()
    await site.stop()        # no new connections; the ones in flight go on
    await gw.drain()
    await runner.cleanup()
    assert gw.session is not None
    await gw.session.close()
    lock.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--break", dest="breaks", action="append", default=[], choices=sorted(SWITCHES))
    a = ap.parse_args()
    sys.exit(asyncio.run(main(a.port, a.upstream, a.state, set(a.breaks))))
