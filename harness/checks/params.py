"""A claim's params checked against its check's signature when the catalog is loaded, so a typo
is exit 2 naming file, claim and field, never an ERROR (or a silently skipped fault) at run time.

The signature is the schema: every parameter after `ctx` is a field; one without a default is
required; its annotation is its type, validated with pydantic (a `Literal[...]` is an enumeration).
A check may add what a signature cannot say as `@params_rule(fn)` (toxic expressions, say)."""
from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, Optional

from pydantic import TypeAdapter, ValidationError

Rule = Callable[[dict[str, Any]], None]   # raises ValueError("field: what is wrong")
_RULES: dict[Callable[..., Any], Rule] = {}


def params_rule(rule: Rule) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def attach(fn: Callable[..., Any]) -> Callable[..., Any]:
        _RULES[fn] = rule
        return fn
    return attach


def problem(fn: Callable[..., Any], params: dict[str, Any]) -> Optional[str]:
    """What is wrong with `params` for check `fn` ("params.when: ..."), or None."""
    sig = inspect.signature(fn)
    fields = [p for p in list(sig.parameters.values())[1:]
              if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    names = {p.name for p in fields}
    if not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        for name in params:
            if name not in names:
                return f"params.{name}: no such parameter (it takes: {', '.join(sorted(names)) or 'none'})"
    hints = typing.get_type_hints(fn)
    for p in fields:
        if p.name not in params:
            if p.default is inspect.Parameter.empty:
                return f"params.{p.name}: required"
            continue
        if p.name in hints:
            try:
                TypeAdapter(hints[p.name]).validate_python(params[p.name], strict=False)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"])
                return f"params.{p.name}{where}: {err['msg']}"
    rule = _RULES.get(inspect.unwrap(fn)) or _RULES.get(fn)
    if rule is not None:
        try:
            rule(params)
        except ValueError as exc:
            return f"params.{exc}"
    return None
