"""A websocket session with the gateway (realtime routes): every open, send and receive bounded."""
from __future__ import annotations

import json
import socket
import time
from typing import Any, Optional

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect


class WSError(Exception):
    pass


class Session:
    def __init__(self, url: str, headers: dict[str, str], open_s: float = 10) -> None:
        try:
            self.ws: ClientConnection = connect(url, additional_headers=headers, open_timeout=open_s,
                                                close_timeout=2, max_size=16 * 1024 * 1024)
        except InvalidStatus as exc:
            raise WSError(f"the gateway refused the websocket: HTTP {exc.response.status_code}") from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise WSError(f"could not open the websocket: {type(exc).__name__}: {exc}") from None
        self.events: list[dict[str, Any]] = []

    def send(self, event: dict[str, Any]) -> None:
        self.ws.send(json.dumps(event))

    def recv_until(self, done, deadline_s: float) -> Optional[str]:
        """Receives events until done(event) or the deadline; None, or why it stopped early."""
        end = time.monotonic() + deadline_s
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return f"no end within {deadline_s:.0f}s"
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                return f"no end within {deadline_s:.0f}s"
            except ConnectionClosed as exc:
                return f"the gateway closed the websocket ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
            try:
                event = json.loads(raw)
            except ValueError:
                return f"an event that is not JSON: {str(raw)[:120]!r}"
            self.events.append(event)
            if done(event):
                return None

    def drop(self) -> None:
        """Goes away without a closing handshake, as a client whose network fails."""
        try:
            self.ws.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ws.socket.close()

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - closing a dead session is best effort
            pass
