"""A gateway's admin API described as data (promises.keys, config.AdminCall): a call's templates
filled with its values and sent once, within the client's deadline. What the calls mean (a key
created, revoked, its spend) is the checks' business (checks/keys.py); this module only speaks HTTP."""
from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from harness.client.http import Exchange, GatewayClient
from harness.config import PLACEHOLDER, AdminCall


class AdminError(Exception):
    """The call got no 2xx answer: the reason, and what was said (for the evidence)."""

    def __init__(self, reason: str, said: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason, self.said = reason, said


def dig(obj: Any, dotted: str) -> Any:
    """The value at a dotted field of a JSON answer ("info.spend"), or None when it is not there."""
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def text(value: Any) -> str:
    """A value as it goes into a string. A float is written exactly and never in exponent form: the
    shortest digits that read back as the same float (repr), whole numbers without ".0" (a duration
    "2s", not "2.0s"). `{value:g}` kept six significant digits: 1234567 became "1.23457e+06"."""
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else format(Decimal(repr(value)), "f")
    return str(value)


def fill(template: Any, values: dict[str, Any], in_path: bool = False) -> Any:
    """`template` with its {placeholders} filled: a string that is one placeholder alone becomes the
    value itself (a number stays a number); in a path each value is URL-quoted. config.Keys allows
    each call only the placeholders its check sends (config.CALL_PLACEHOLDERS)."""
    if isinstance(template, str):
        whole = re.fullmatch(PLACEHOLDER, template)
        if whole and not in_path:
            return values[whole.group(1)]
        return re.sub(PLACEHOLDER, lambda m: quote(text(values[m.group(1)]), safe="") if in_path
                      else text(values[m.group(1)]), template)
    if isinstance(template, dict):
        return {fill(k, values): fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def said(ex: Exchange) -> dict[str, Any]:
    """What an admin call answered, for the evidence (the caller redacts the keys it knows)."""
    return {"status": ex.status, "elapsed_s": round(ex.elapsed_s, 3), "body": ex.body[:500].decode("utf-8", "replace")}


def send(gateway: GatewayClient, name: str, call: AdminCall, values: dict[str, Any],
         headers: dict[str, str]) -> tuple[Exchange, Any]:
    """Sends the call once (the client's own deadline bounds it) with `headers` instead of the run's
    key; its 2xx answer and the answer's JSON, else AdminError."""
    path = fill(call.path, values, in_path=True)
    body = fill(call.body, values) if call.body is not None else None
    ex = gateway.request(call.method, path, body, headers=headers, auth=False)
    if ex.error or ex.status is None or not 200 <= ex.status < 300:
        raise AdminError(f"the admin API's {name} call ({call.method} {call.path}) answered "
                         f"{f'HTTP {ex.status}' if ex.status is not None else ex.error}: "
                         f"{ex.body[:300].decode('utf-8', 'replace')}", {"admin_call": said(ex)})
    return ex, ex.json()
