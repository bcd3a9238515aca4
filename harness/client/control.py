"""Talks to a mock provider's control API: set its fault script, read its journal."""
from __future__ import annotations

from typing import Any, Optional

import httpx


class ProviderControl:
    def __init__(self, name: str, url: str, timeout_s: float = 5, refuses: bool = False) -> None:
        self.name, self.url, self.refuses = name, url.rstrip("/"), refuses
        self._client = httpx.Client(timeout=timeout_s, trust_env=False)

    def __enter__(self) -> "ProviderControl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def script(self, **rule: Any) -> int:
        r = self._client.post(f"{self.url}/__harness/script", json=rule)
        r.raise_for_status()
        return r.json()["ids"][0]

    def clear_script(self, tag: Optional[str] = None) -> None:
        self._client.delete(f"{self.url}/__harness/script", params={"tag": tag} if tag else None).raise_for_status()

    def journal(self, tag: Optional[str] = None, since_seq: int = 0,
                served: Optional[bool] = None, since_t: Optional[float] = None,
                last: Optional[int] = None) -> list[dict[str, Any]]:
        """`served=False`: only the requests on routes the mock does not serve (answered 404);
        `since_t`: only those received since this wall-clock time; `last`: only the latest N."""
        if self.refuses:
            return []   # nothing listens there, so nothing was ever received
        params: dict[str, Any] = {"since_seq": since_seq}
        if tag:
            params["tag"] = tag
        if served is not None:
            params["served"] = "1" if served else "0"
        if since_t is not None:
            params["since_t"] = repr(since_t)
        if last:
            params["last"] = last
        r = self._client.get(f"{self.url}/__harness/journal", params=params)
        r.raise_for_status()
        return r.json()["entries"]

    def clear_journal(self) -> None:
        self._client.delete(f"{self.url}/__harness/journal").raise_for_status()
