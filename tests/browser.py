"""A tiny Chrome DevTools Protocol driver for tests: headless Chromium, one page, console errors collected.

No selenium or playwright (they download browser builds); only Debian's `chromium` and websocket-client.
Generic on purpose: selectors and checks about a given page belong in the tests, not here.

    with Browser() as b:                 # always kills chromium and removes its profile dir
        b.navigate(Path("page.html").resolve().as_uri())
        assert not b.errors, b.format_errors()
        b.click('a[href="#x"]')
        b.wait_for("location.hash === '#x'")

Every call has a deadline: nothing here can hang a test run.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket  # websocket-client

from harness.world.processes import kill_group

CANDIDATES = ("chromium", "chromium-browser")


class BrowserError(RuntimeError):
    """Chromium failed to start, a CDP command returned an error, or a page script threw."""


def find_chromium() -> str | None:
    """Path of Debian's chromium (or $CHROMIUM), None when there is none."""
    env = os.environ.get("CHROMIUM")
    if env:
        return shutil.which(env) or (env if os.access(env, os.X_OK) else None)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium process and a CDP session on its first page target."""

    def __init__(self, binary: str | None = None, *, timeout: float = 30.0, width: int = 1280, height: int = 800,
                 extra_args: tuple[str, ...] = ()):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError("chromium not found on PATH (install it: bash ci/setup-browser.sh)")
        self.timeout = timeout
        self.width, self.height = width, height
        self.extra_args = tuple(extra_args)
        self.errors: list[dict[str, Any]] = []   # console errors, uncaught exceptions, Log errors of the page
        self.events: list[dict[str, Any]] = []   # every CDP event received, for debugging
        self._ids = itertools.count(1)
        self._proc: subprocess.Popen | None = None
        self._ws: websocket.WebSocket | None = None
        self._dir: str | None = None
        self._loaded = False

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def __enter__(self) -> "Browser":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> "Browser":
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="cdp-chromium-")
        profile = Path(self._dir, "profile")
        profile.mkdir()
        self._log = open(Path(self._dir, "chromium.log"), "wb")
        args = [self.binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                "--remote-debugging-port=0", f"--user-data-dir={profile}",
                f"--window-size={self.width},{self.height}", *self.extra_args, "about:blank"]
        # Own process group: close() signals chromium and every helper process it started.
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        port = self._read_port(profile / "DevToolsActivePort")
        ws_url = self._page_ws_url(port)
        self._ws = websocket.create_connection(ws_url, timeout=self.timeout, suppress_origin=True,
                                               http_no_proxy=["127.0.0.1", "localhost"])
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def _read_port(self, path: Path) -> int:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self._proc.returncode} before DevTools was up:\n{self.log_tail()}")
            try:
                lines = path.read_text().splitlines()
                if len(lines) >= 2 and lines[0].strip().isdigit():
                    return int(lines[0])
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"chromium wrote no {path.name} within {self.timeout}s:\n{self.log_tail()}")

    def _page_ws_url(self, port: int) -> str:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # loopback: never via a proxy
        deadline = time.monotonic() + self.timeout
        while True:
            with opener.open(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout) as r:
                targets = json.load(r)
            pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            if time.monotonic() > deadline:
                raise TimeoutError(f"chromium has no page target: {targets}")
            time.sleep(0.05)

    def close(self) -> None:
        """Idempotent; always kills chromium (process group) and removes the profile dir."""
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close(timeout=1)
            except Exception:
                pass
        proc, self._proc = self._proc, None
        if proc is not None:
            # SIGTERM to the main process first: chromium then stops and reaps its own helpers; whatever is
            # left of its process group after that gets SIGKILL.
            try:
                proc.terminate()
                proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            kill_group(proc)
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()
        d, self._dir = self._dir, None
        if d is not None:
            for _ in range(5):   # a dying helper may still write into the profile
                shutil.rmtree(d, ignore_errors=True)
                if not os.path.exists(d):
                    break
                time.sleep(0.2)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(Path(self._dir, "chromium.log").read_text(errors="replace").splitlines()[-n:])
        except (OSError, TypeError):
            return ""

    # ---- protocol ----------------------------------------------------------------------------------------------
    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None) -> dict[str, Any]:
        """One CDP command; returns its result, raises BrowserError on a protocol error, TimeoutError at the deadline."""
        if self._ws is None:
            raise BrowserError("browser is not started")
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._recv(deadline, f"reply to {method}")
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def _recv(self, deadline: float, what: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no {what} in time")
        self._ws.settimeout(remaining)
        try:
            raw = self._ws.recv()
        except websocket.WebSocketTimeoutException:
            raise TimeoutError(f"no {what} in time") from None
        msg = json.loads(raw)
        if "method" in msg:
            self._on_event(msg["method"], msg.get("params", {}))
        return msg

    def pump(self, seconds: float) -> None:
        """Receive events for a while (e.g. errors from timers after load)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self._recv(deadline, "event")
            except TimeoutError:
                break

    def _on_event(self, method: str, p: dict[str, Any]) -> None:
        self.events.append({"method": method, "params": p})
        if method == "Page.loadEventFired":
            self._loaded = True
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", a.get("type")))) for a in p.get("args", []))
            frame = (p.get("stackTrace") or {}).get("callFrames") or [{}]
            self.errors.append({"source": f"console.{p['type']}", "text": text,
                                "url": frame[0].get("url"), "line": frame[0].get("lineNumber")})
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            exc = d.get("exception") or {}
            self.errors.append({"source": "exception", "text": exc.get("description") or d.get("text"),
                                "url": d.get("url"), "line": d.get("lineNumber")})
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append({"source": f"log.{e.get('source')}", "text": e.get("text"),
                                "url": e.get("url"), "line": e.get("lineNumber")})

    def format_errors(self) -> str:
        return "\n".join(f"[{e['source']}] {e['text']} ({e.get('url')}:{e.get('line')})" for e in self.errors) or "no errors"

    # ---- page --------------------------------------------------------------------------------------------------
    def navigate(self, url: str, timeout: float | None = None, clear_errors: bool = True) -> None:
        """Go to url and wait for its load event (a same-document navigation, e.g. to '#id', has none)."""
        if clear_errors:
            self.errors.clear()
        self._loaded = False
        res = self.send("Page.navigate", {"url": url}, timeout)
        if res.get("errorText"):
            raise BrowserError(f"navigate {url}: {res['errorText']}")
        if res.get("loaderId"):
            deadline = time.monotonic() + (timeout or self.timeout)
            while not self._loaded:
                self._recv(deadline, f"load event of {url}")
        # A round trip to the page: every event the page sent before it has now been received.
        self.evaluate("document.readyState", timeout)

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """The value of a JS expression (promises awaited); a script error raises BrowserError."""
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True,
                                             "userGesture": True}, timeout)
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            raise BrowserError(f"evaluate: {(d.get('exception') or {}).get('description') or d.get('text')}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float | None = None, interval: float = 0.05) -> Any:
        """Poll a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = self.evaluate(expression, timeout)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true: {expression}")
            self.pump(interval)

    def set_viewport(self, width: int, height: int) -> None:
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def click(self, selector: str, timeout: float | None = None) -> None:
        """A real mouse click at the centre of the first element matching selector, scrolled into view.

        Raises LookupError when nothing matches, BrowserError when the element is hidden or covered."""
        box = self.evaluate(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) return null;
            el.scrollIntoView({{block: "center", inline: "center"}});
            const r = el.getBoundingClientRect();
            const x = r.left + r.width / 2, y = r.top + r.height / 2;
            const hit = document.elementFromPoint(x, y);
            return {{x, y, w: r.width, h: r.height, hit: !!hit && (hit === el || el.contains(hit))}};
        }})()""", timeout)
        if box is None:
            raise LookupError(f"no element matches {selector!r}")
        if not box["w"] or not box["h"]:
            raise BrowserError(f"{selector!r} is not displayed")
        if not box["hit"]:
            raise BrowserError(f"{selector!r} is covered by another element")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params = {"type": kind, "x": box["x"], "y": box["y"]}
            if kind != "mouseMoved":
                params.update(button="left", buttons=1 if kind == "mousePressed" else 0, clickCount=1)
            self.send("Input.dispatchMouseEvent", params, timeout)

    def screenshot(self, path: str | Path, timeout: float | None = None) -> Path:
        import base64
        data = self.send("Page.captureScreenshot", {"format": "png"}, timeout)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)
