from __future__ import annotations

import json
from typing import Any

Violations = list[str]

# What json.loads raises on text a gateway can send: ValueError (a JSONDecodeError, or a plain
# ValueError for an integer too long to convert) and RecursionError (arrays nested too deep).
JSON_ERRORS = (ValueError, RecursionError)


def short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def get(obj: Any, *path: Any) -> Any:
    for p in path:
        if isinstance(p, int):
            obj = obj[p] if isinstance(obj, list) and -len(obj) <= p < len(obj) else None
        else:
            obj = obj.get(p) if isinstance(obj, dict) else None
        if obj is None:
            return None
    return obj


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_one_of(v: Any, allowed: set[str]) -> bool:
    return isinstance(v, str) and v in allowed   # `in` on a set raises for a list or dict


def list_or_empty(v: Any) -> list:
    """What an oracle iterates: a gateway may put a number or a bool where a list belongs."""
    return v if isinstance(v, list) else []


def all_distinct(values: list) -> bool:
    """No two equal; by comparison, not a set, as JSON lists and dicts are unhashable."""
    return all(v not in values[:i] for i, v in enumerate(values))


def usage_adds_up(usage: Any, where: str, prompt: str = "prompt_tokens",
                  completion: str = "completion_tokens", total: str = "total_tokens") -> Violations:
    if not isinstance(usage, dict):
        return [f"{where} is missing or not an object: {short(usage)}"]
    out = [f"{where}.{k} is not a non-negative integer: {short(usage.get(k))}"
           for k in (prompt, completion, total) if not (is_int(usage.get(k)) and usage.get(k) >= 0)]
    if not out and usage[prompt] + usage[completion] != usage[total]:
        out.append(f"{where}: {prompt} {usage[prompt]} + {completion} {usage[completion]} "
                   f"!= {total} {usage[total]}")
    return out
