"""The model catalog: GET /v1/models."""
from __future__ import annotations

from typing import Any, Iterable

from harness.oracles.common import Violations, get, list_or_empty, short


def list_shape(obj: Any) -> Violations:
    out: Violations = []
    if get(obj, "object") != "list":
        out.append(f"object should be 'list', got {short(get(obj, 'object'))}")
    data = get(obj, "data")
    if not isinstance(data, list):
        return out + [f"data should be a list, got {short(data)}"]
    for i, m in enumerate(data):
        if not (isinstance(get(m, "id"), str) and get(m, "id")):
            out.append(f"data[{i}].id should be a non-empty string, got {short(get(m, 'id'))}")
        if get(m, "object") != "model":
            out.append(f"data[{i}].object should be 'model', got {short(get(m, 'object'))}")
    return out[:6]


def ids(obj: Any) -> list[str]:
    return [m["id"] for m in list_or_empty(get(obj, "data")) if isinstance(get(m, "id"), str)]


def lists_all(obj: Any, expected: Iterable[str], what: str = "configured model") -> Violations:
    have = set(ids(obj))
    return [f"{what} {name!r} is missing from /v1/models (it lists {sorted(have)})"
            for name in expected if name not in have]


def no_duplicates(obj: Any) -> Violations:
    seen, dups = set(), []
    for i in ids(obj):
        if i in seen:
            dups.append(i)
        seen.add(i)
    return [f"/v1/models lists {d!r} more than once" for d in dups]
