"""Error answers: a clean 4xx with an OpenAI-style error object, never a 5xx or a hang."""
from __future__ import annotations

from typing import Any, Optional

from harness.oracles.common import Violations, get, short


def openai_error_object(obj: Any) -> Violations:
    err = get(obj, "error")
    if not isinstance(err, dict):
        return [f"body should be {{'error': {{'message': ..., 'type': ...}}}}, got {short(obj)}"]
    out: Violations = []
    if not (isinstance(err.get("message"), str) and err["message"]):
        out.append(f"error.message should be a non-empty string, got {short(err.get('message'))}")
    if "type" in err and err["type"] is not None and not isinstance(err["type"], str):
        out.append(f"error.type should be a string, got {short(err.get('type'))}")
    return out


def client_error_status(status: Optional[int], error: Optional[str]) -> Violations:
    if error:
        return [f"no answer: {error}"]
    if status is None or not 400 <= status < 500:
        return [f"status should be 4xx for a client error, got {status}"]
    return []
