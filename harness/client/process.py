"""The checks' side of harness/world/control.py: signal the gateway, wait for its exit, start it again,
ask for its pid."""
from __future__ import annotations

from typing import Any, Optional

import httpx

from harness.world.control import TOKEN_HEADER


class RestartFailed(Exception):
    """The gateway did not start again (its own error, as the world's start saw it)."""


class ProcessControl:
    def __init__(self, url: str, token: str, restart_timeout_s: float) -> None:
        # A restart waits for the gateway to be ready: as long as its first start may take, and a margin.
        self._client = httpx.Client(base_url=url, headers={TOKEN_HEADER: token}, trust_env=False,
                                    timeout=httpx.Timeout(10.0, read=restart_timeout_s + 30))

    def close(self) -> None:
        self._client.close()

    def _post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        r = self._client.post(path, json=body)
        return r.status_code, r.json()

    def signal(self, name: str) -> int:
        status, body = self._post("/gateway/signal", {"signal": name})
        if status != 200:
            raise RuntimeError(f"signal {name}: {body.get('error')}")
        return body["pid"]

    def wait_exit(self, timeout_s: float) -> Optional[int]:
        """The gateway's exit code once it has exited, None if it still runs after `timeout_s`."""
        _, body = self._post("/gateway/wait_exit", {"timeout_s": timeout_s})
        return body["returncode"] if body.get("exited") else None

    def pid(self) -> Optional[int]:
        """The gateway's pid (its process group's id too), None when it is not running."""
        status, body = self._post("/gateway/pid", {})
        if status != 200:
            raise RuntimeError(f"pid: {body.get('error')}")
        return body["pid"] if body.get("running") else None

    def restart(self) -> float:
        """Starts the gateway again; how long it took to be ready. Raises RestartFailed."""
        status, body = self._post("/gateway/restart", {})
        if status != 200:
            raise RestartFailed(body.get("error") or f"HTTP {status}")
        return body["ready_s"]
