"""The world around the gateway: a provider that refuses connections keeps refusing all run long."""
from __future__ import annotations

import errno
import socket

import pytest

from harness.config import parse
from harness.secrets import Redactor
from harness.world.world import World


def _config():
    return parse({"target": {"name": "external", "url": "http://127.0.0.1:9"},   # a running gateway: nothing to start
                  "providers": [{"name": "oa", "kind": "openai"},
                                {"name": "dead", "kind": "openai", "refuses_connections": True}],
                  "models": [{"name": "m", "provider": "oa"}]}, "test harness.yaml")


def _bind(port: int) -> None:
    """Binds the port the way a server does (SO_REUSEADDR set), then lets it go."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_the_world_holds_a_refusing_providers_port_until_it_stops_even_on_ctrl_c(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with World(_config(), tmp_path / "harness.yaml", None, Redactor([])) as world:
            assert world.info is not None
            port = int(world.info.providers["dead"]["url"].rsplit(":", 1)[1])
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            with pytest.raises(OSError) as taken:   # a server started later cannot take it and answer
                _bind(port)
            assert taken.value.errno == errno.EADDRINUSE
            raise KeyboardInterrupt   # Ctrl-C mid-run: the world stops and lets the port go
    _bind(port)
