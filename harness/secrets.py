"""Keeps API keys out of journals, reports, logs and JUnit files.

Two layers: headers that carry credentials are masked where they are recorded, and every text the
harness writes goes through `Redactor`, which replaces each secret it was told about.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Iterable

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


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def text(self, s: str) -> str:
        for secret in self._secrets:
            s = s.replace(secret, "***")
        return _KEY_LIKE.sub(lambda m: (m.group(1) or "") + "***", s)

    def data(self, obj: Any) -> Any:
        """Redacts every string inside a JSON-like structure, and masks header-like dicts."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {
                k: (mask(v) if isinstance(k, str) and k.lower() in SECRET_HEADERS and isinstance(v, str)
                    else self.data(v))
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple)):
            return [self.data(v) for v in obj]
        return obj
