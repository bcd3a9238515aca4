"""Process faults on the gateway the harness started: the world owns the process, so the checks (in
pytest workers, other processes) ask it, over a loopback endpoint, to signal the gateway, to wait
for its exit and to start it again on the same port with the same config.

POST /gateway/signal     {"signal": "KILL" | "TERM"}  -> {"pid": ...}
POST /gateway/wait_exit  {"timeout_s": 10}           -> {"exited": bool, "returncode": int | null}
POST /gateway/restart    {}                           -> {"pid": ..., "ready_s": ...} or 503 {"error": ...}
POST /gateway/pid        {}                           -> {"pid": ..., "running": bool}

The pid is also the gateway's process group id (it is started in a session of its own): the resource
checks (checks/resources.py) read the whole group's memory, threads and open files from /proc.

Every request carries the run's token (X-Harness-Token): the endpoint kills processes, and other
users of the machine must not.
"""
from __future__ import annotations

import hmac
import json
import secrets
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable, Optional

from harness.world.gateway import Launch
from harness.world.processes import Child, StartError, signal_group

SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM}
TOKEN_HEADER = "X-Harness-Token"


class GatewayProcess:
    """The gateway's current process, replaced when it is started again (one change at a time)."""

    def __init__(self, child: Child, launch: Launch, on_restart: Callable[[Child], None] = lambda c: None) -> None:
        self.child, self.launch, self._on_restart = child, launch, on_restart
        self._lock = threading.Lock()

    def signal(self, name: str) -> int:
        """Signals the gateway's whole process group, as an orchestrator stopping its container does."""
        with self._lock:
            if self.child.alive():   # not reaped: the group id is still the gateway's
                signal_group(self.child.pid, SIGNALS[name])
            return self.child.pid

    def current(self) -> tuple[int, bool]:
        """The current process's pid, and whether it runs."""
        with self._lock:
            return self.child.pid, self.child.alive()

    def wait_exit(self, timeout_s: float) -> Optional[int]:
        try:
            return self.child.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def restart(self) -> tuple[int, float]:
        """Whatever is left of the old process goes; the same command starts again. Returns the new
        pid and how long it took to be ready."""
        with self._lock:
            self.child.stop(grace_s=0)   # ends with kill_group: nothing of the old process is left
            t0 = time.monotonic()
            self.child = self.launch.start_again()
            self._on_restart(self.child)
            return self.child.pid, round(time.monotonic() - t0, 3)

    def stop(self, grace_s: float) -> None:
        with self._lock:
            self.child.stop(grace_s=grace_s)


class ControlServer:
    """The loopback endpoint for one GatewayProcess, served from a thread until closed."""

    def __init__(self, process: GatewayProcess) -> None:
        self.process = process
        self.token = secrets.token_urlsafe(24)
        # One thread serves every request, in turn, for the server's whole life: a restarted gateway is
        # forked from it, and PR_SET_PDEATHSIG (world/processes.py) kills a child when the *thread* that
        # forked it ends, so a thread per request would kill each new gateway as its request returned.
        self._server = HTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway-control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        p = self.process
        if path == "/gateway/signal":
            name = body.get("signal")
            if name not in SIGNALS:
                return 400, {"error": f"signal must be one of {', '.join(SIGNALS)}"}
            return 200, {"pid": p.signal(name)}
        if path == "/gateway/wait_exit":
            rc = p.wait_exit(min(float(body.get("timeout_s", 10)), 120.0))
            return 200, {"exited": rc is not None, "returncode": rc}
        if path == "/gateway/restart":
            try:
                pid, ready_s = p.restart()
            except StartError as exc:
                return 503, {"error": str(exc)}
            return 200, {"pid": pid, "ready_s": ready_s}
        if path == "/gateway/pid":
            pid, running = p.current()
            return 200, {"pid": pid, "running": running}
        return 404, {"error": f"no such route {path}"}


def _handler(control: ControlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:   # noqa: N802 - the stdlib's name
            if not hmac.compare_digest(self.headers.get(TOKEN_HEADER, ""), control.token):
                return self._send(403, {"error": "bad token"})
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(min(length, 65536)) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                return self._send(400, {"error": f"bad body: {exc}"})
            self._send(*control.answer(self.path, body))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:   # quiet: the checks' evidence says what happened
            pass
    return Handler
