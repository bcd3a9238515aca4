"""A mapping file: claim id -> the test ids that verify it, for the links neither a marker nor a
name makes. YAML, at the top level or under `claims:`:

    X-6.5.1: tests/unit/test_refunds.py::test_refund_on_5xx
    team:X-6.5.2:
      - tests/unit/test_refunds.py::TestOnce          # a class: every test in it
      - example.com/gw/refunds.TestOnce/second_try    # a Go test or subtest

Claim ids may be written as in the plan or with the namespace; a test id may name a test, a
parametrised test without its parameters, a file, a class or a Go parent test (see model.id_matches)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from harness import yaml_strict
from harness.config import ConfigError
from harness.repo.plan import DEFAULT_NAMESPACE, Claim, qualify


def read_mapping(path: Path, claims: Optional[list[Claim]] = None,
                 namespace: str = DEFAULT_NAMESPACE) -> dict[str, list[str]]:
    """Namespaced claim id -> test ids. With `claims`, a key naming no claim of the plan is an error
    (a typo would otherwise silently leave the claim MISSING)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml_strict.load(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such mapping file") from None
    except yaml.YAMLError as exc:
        at, what = yaml_strict.describe(exc)
        raise ConfigError(f"{path}{at}: not valid YAML: {what}") from None
    lines = _key_lines(text)
    if isinstance(data, dict) and set(data) == {"claims"}:
        data = data["claims"]
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of claim id -> test ids, not a {type(data).__name__}")
    known = {c.id for c in claims} if claims is not None else None
    out: dict[str, list[str]] = {}
    for key, value in data.items():
        where = f"{path}:{lines.get(str(key), 1)}: {key}"
        claim_id = qualify(str(key), namespace)
        if known is not None and claim_id not in known:
            raise ConfigError(f"{where}: no such claim in the plan")
        out[claim_id] = _tests(where, value)
    return out


def _tests(where: str, value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(t, str) and t.strip() for t in items):
        raise ConfigError(f"{where}: must be a test id or a list of test ids")
    return [t.strip() for t in items]


def _key_lines(text: str) -> dict[str, int]:
    """Each mapping key's line (the top level's, and those under `claims:`), for error messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[str, int] = {}
    nodes = [root] if isinstance(root, yaml.MappingNode) else []
    while nodes:
        node = nodes.pop()
        for k, v in node.value:
            out.setdefault(str(k.value), k.start_mark.line + 1)
            if k.value == "claims" and isinstance(v, yaml.MappingNode):
                nodes.append(v)
    return out
