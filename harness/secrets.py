"""Keeps API keys out of journals, reports, logs and JUnit files.

Two layers: headers that carry credentials are masked where they are recorded, and every text the
harness writes goes through `Redactor`, which replaces each secret it was told about.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Iterable, Optional

SECRET_HEADERS = {
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
    "openai-api-key", "anthropic-api-key", "cookie", "set-cookie", "x-litellm-api-key",
}
# Strings that look like keys even when nobody registered them (sk-..., Bearer ...).
_KEY_LIKE = re.compile(r"(?i)\b(bearer\s+)?(sk|pk|rk|key)-[A-Za-z0-9_\-]{6,}")


def fingerprint(secret: str) -> str:
    """32 bits of a hash: enough to tell two keys apart in a journal, useless to an attacker."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def mask(value: str) -> str:
    """A short prefix says which kind of key it was; the fingerprint says which key it was."""
    value = str(value)
    if value.lower().startswith("bearer "):
        return "Bearer " + mask(value[7:])
    return ((value[:3] + "***") if len(value) > 8 else "***") + f"#{fingerprint(value)}"


def mask_headers(headers: Iterable[tuple[str, str]] | dict[str, str]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, dict) else headers
    out: dict[str, str] = {}
    for k, v in items:
        out[k.lower()] = mask(v) if k.lower() in SECRET_HEADERS else v
    return out


def share(path: Path | str, secret: str) -> None:
    """Tells every redactor that follows `path` about `secret`: a key a check made in a pytest worker
    (a gateway-made client key, the admin key) must be masked in the files the run writes elsewhere
    (the gateway's log copied at the end). The file lives in the world's 0700 directory, 0600, and
    goes with it; one line a secret, written with one append so workers never interleave."""
    if not secret or "\n" in secret:   # a key with a line break cannot be sent in a header anyway
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (secret + "\n").encode())
    finally:
        os.close(fd)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._shared: Optional[Path] = None   # a file other processes `share` secrets into
        self._taken = 0                       # bytes of it already read

    def follow(self, path: Path | str) -> None:
        """Also masks every secret `share`d into `path`, read again before each use."""
        self._shared, self._taken = Path(path), 0

    def _refresh(self) -> None:
        if self._shared is None:
            return
        try:
            with open(self._shared, "rb") as f:
                f.seek(self._taken)
                new = f.read()
        except FileNotFoundError:   # nothing shared yet, or the world is gone (its secrets are here)
            return
        whole = new[:new.rfind(b"\n") + 1]   # a line still being written is read once it is whole
        self._taken += len(whole)
        for line in whole.decode("utf-8", "replace").splitlines():
            self.add(line)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def text(self, s: str) -> str:
        self._refresh()
        return self._text(s)

    def _text(self, s: str) -> str:
        for secret in self._secrets:
            s = s.replace(secret, "***")
        return _KEY_LIKE.sub(lambda m: (m.group(1) or "") + "***", s)

    def data(self, obj: Any) -> Any:
        """Redacts every string inside a JSON-like structure, and masks header-like dicts."""
        self._refresh()
        return self._data(obj)

    def _data(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self._text(obj)
        if isinstance(obj, dict):
            return {
                k: (mask(v) if isinstance(k, str) and k.lower() in SECRET_HEADERS and isinstance(v, str)
                    else self._data(v))
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple)):
            return [self._data(v) for v in obj]
        return obj
