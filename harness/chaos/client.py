"""The harness's handle on a Toxiproxy API server (ours or a real one), built on toxiproxy-python.

Where that 2019 client falls short of the v2 API we extend it, and say so here:
- it sends every call through one class, `APIConsumer`, whose host and port are class attributes:
  one server per process. Each ChaosControl has its own consumer (its server's URL and an HTTP
  client with a deadline on every call, the house rule), and the library's calls made through it
  (its `server`, and every proxy object that server hands out) go to that consumer and no other.
  `APIConsumer`'s methods are replaced once, by a dispatcher that looks up the consumer of the
  ChaosControl making the call (a context variable, so threads do not see each other's); a call
  made outside any ChaosControl keeps the library's own behaviour;
- it lacks toxic update, a real /populate, the JSON /version and our /errors: added below;
- its errors are bare exceptions with the body as text: `ToxiproxyError` carries status and message.
"""
from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable, Optional

import httpx
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer, validate_response
from toxiproxy.proxy import Proxy

DEADLINE_S = 5.0


class ToxiproxyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class _Consumer:
    """One Toxiproxy server: what `APIConsumer` is for toxiproxy-python, per instance."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=DEADLINE_S, trust_env=False)

    def request(self, method: str, path: str, params: Any = None, data: Any = None, json: Any = None,
                **_: Any) -> httpx.Response:
        # httpx's response has what the library reads of one: status_code, content, json().
        return validate_response(self.http.request(method, path, params=params, content=data, json=json))


_CURRENT: contextvars.ContextVar[Optional[_Consumer]] = contextvars.ContextVar("harness_toxiproxy", default=None)


def _dispatch(method: str) -> classmethod:
    original = APIConsumer.__dict__[method.lower()].__func__

    def call(cls, url, *args, **kwargs):
        consumer = _CURRENT.get()
        if consumer is None:   # not through a ChaosControl: the library as it was
            return original(cls, url, *args, **kwargs)
        if args:   # the library's positional forms: get(url, params), post(url, data, json)
            names = ("params",) if method == "GET" else ("data", "json")
            kwargs.update(zip(names, args))
        return consumer.request(method, url, **kwargs)
    return classmethod(call)


if not getattr(APIConsumer, "_harness_dispatch", False):   # once per process, whatever imports us again
    APIConsumer.get = _dispatch("GET")        # type: ignore[method-assign]
    APIConsumer.post = _dispatch("POST")      # type: ignore[method-assign]
    APIConsumer.delete = _dispatch("DELETE")  # type: ignore[method-assign]
    APIConsumer._harness_dispatch = True      # type: ignore[attr-defined]


def _through_consumer(fn: Callable) -> Callable:
    """Runs a toxiproxy-python method with its object's own consumer in charge."""
    @functools.wraps(fn)
    def call(self, *args, **kwargs):
        token = _CURRENT.set(self._consumer)
        try:
            return fn(self, *args, **kwargs)
        finally:
            _CURRENT.reset(token)
    return call


class BoundProxy(Proxy):
    """toxiproxy-python's Proxy, talking to the server it came from."""

    def __init__(self, consumer: _Consumer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._consumer = consumer

    @classmethod
    def of(cls, consumer: _Consumer, proxy: Proxy) -> "BoundProxy":
        return cls(consumer, name=proxy.name, upstream=proxy.upstream, enabled=proxy.enabled, listen=proxy.listen)


for _name in ("toxics", "get_toxic", "add_toxic", "destroy_toxic", "destroy", "disable", "enable"):
    setattr(BoundProxy, _name, _through_consumer(getattr(Proxy, _name)))


class BoundServer(Toxiproxy):
    """toxiproxy-python's Toxiproxy for one server; the proxies it returns are bound to it too."""

    def __init__(self, consumer: _Consumer) -> None:
        self._consumer = consumer

    @_through_consumer
    def proxies(self) -> dict[str, BoundProxy]:
        return {name: BoundProxy.of(self._consumer, p) for name, p in Toxiproxy.proxies(self).items()}

    @_through_consumer
    def create(self, upstream, name, listen=None, enabled=None) -> BoundProxy:
        return BoundProxy.of(self._consumer, Toxiproxy.create(self, upstream, name, listen=listen, enabled=enabled))

    def running(self) -> bool:
        try:
            self._consumer.http.get("/version")
        except httpx.HTTPError:
            return False
        return True

    def update_api_consumer(self, host, port) -> None:
        """Points this server object (only) elsewhere."""
        self._consumer.http.close()
        self._consumer = _Consumer(f"http://{host}:{port}")


for _name in ("destroy_all", "get_proxy", "version", "reset", "destroy", "populate"):
    setattr(BoundServer, _name, _through_consumer(getattr(Toxiproxy, _name)))


class ChaosControl:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._consumer = _Consumer(self.url)
        self.server = BoundServer(self._consumer)
        self._http = self._consumer.http

    def close(self) -> None:
        self.server._consumer.http.close()
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

    def errors(self) -> Optional[dict[str, Any]]:
        """The fault proxy's own failures so far (our embedded proxy's /errors: {"count", "recent"}),
        or None from a server that does not report them (a real Toxiproxy)."""
        try:
            data = self._json("GET", "/errors")
        except ToxiproxyError as exc:
            if exc.status in (404, 405):
                return None
            raise
        return data if isinstance(data, dict) and "count" in data else None
