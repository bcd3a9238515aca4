"""The harness's handle on a Toxiproxy API server (ours or a real one), built on toxiproxy-python.

Where that 2019 client falls short of the v2 API we extend it, and say so here:
- its HTTP calls have no deadline: every call now gets `timeout` (the house rule);
- it keeps host and port as class attributes: one server per process, set by `connect()`;
- it lacks toxic update, a real /populate and the JSON /version: added with httpx below;
- its errors are bare exceptions with the body as text: `ToxiproxyError` carries status and message.
"""
from __future__ import annotations

from typing import Any, Optional

import httpx
import requests
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer, validate_response

DEADLINE_S = 5.0


def _with_deadline(method: str):
    def call(cls, url, **kwargs):
        kwargs.setdefault("timeout", DEADLINE_S)
        return validate_response(requests.request(method, f"http://{cls.host}:{cls.port}{url}", **kwargs))
    return classmethod(call)


APIConsumer.get = _with_deadline("GET")        # type: ignore[method-assign]
APIConsumer.post = _with_deadline("POST")      # type: ignore[method-assign]
APIConsumer.delete = _with_deadline("DELETE")  # type: ignore[method-assign]


class ToxiproxyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class ChaosControl:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        host_port = self.url.split("//", 1)[-1]
        APIConsumer.host, port = host_port.rsplit(":", 1)
        APIConsumer.port = int(port)
        self.server = Toxiproxy()
        self._http = httpx.Client(base_url=self.url, timeout=DEADLINE_S, trust_env=False)

    def close(self) -> None:
        self._http.close()

    # -- through toxiproxy-python ---------------------------------------------------------------
    def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0"):
        return self.server.create(upstream=upstream, name=name, listen=listen)

    def proxy(self, name: str):
        return self.server.get_proxy(name)

    def add_toxic(self, proxy: str, type: str, stream: str = "downstream", toxicity: float = 1.0,
                  name: Optional[str] = None, **attributes: Any) -> str:
        p = self.proxy(proxy)
        if p is None:
            raise ToxiproxyError(404, f"proxy {proxy} not found")
        name = name or f"{type}_{stream}"
        p.add_toxic(name=name, type=type, stream=stream, toxicity=toxicity, attributes=attributes)
        return name

    def remove_toxic(self, proxy: str, name: str) -> None:
        p = self.proxy(proxy)
        if p is not None:
            p.destroy_toxic(name)

    def disable(self, proxy: str) -> None:
        self.proxy(proxy).disable()

    def enable(self, proxy: str) -> None:
        self.proxy(proxy).enable()

    def reset(self) -> None:
        self.server.reset()

    # -- what toxiproxy-python lacks -------------------------------------------------------------
    def _json(self, method: str, path: str, body: Any = None) -> Any:
        r = self._http.request(method, path, json=body)
        if r.status_code >= 400:
            try:
                message = r.json().get("error", r.text)
            except ValueError:
                message = r.text
            raise ToxiproxyError(r.status_code, message)
        return r.json() if r.content else None

    def update_toxic(self, proxy: str, name: str, toxicity: Optional[float] = None, **attributes: Any) -> Any:
        body: dict[str, Any] = {"attributes": attributes}
        if toxicity is not None:
            body["toxicity"] = toxicity
        return self._json("POST", f"/proxies/{proxy}/toxics/{name}", body)

    def populate(self, proxies: list[dict[str, Any]]) -> Any:
        return self._json("POST", "/populate", proxies)

    def version(self) -> str:
        data = self._json("GET", "/version")
        return data["version"] if isinstance(data, dict) else str(data)

    def listen_address(self, proxy: str) -> str:
        return self._json("GET", f"/proxies/{proxy}")["listen"]
