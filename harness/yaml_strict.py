"""YAML read as our files mean it: a key given twice in one mapping is an error.

PyYAML keeps the last of two equal keys without a word; in a claim that once turned
`check: chaos.websocket_drop` into `check: chaos.scenario` unseen. Everything the harness reads
(harness.yaml, claims, policies, load profiles, smoke matrices) goes through `load`."""
from __future__ import annotations

from typing import Any

import yaml


class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue   # `<<: *base` may be overridden by the mapping's own keys, as YAML intends
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"key {key!r} appears twice (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(text: str) -> Any:
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def describe(exc: yaml.YAMLError) -> tuple[str, str]:
    """(":line:column" or "", the problem in one line) for an error message naming the place."""
    mark = getattr(exc, "problem_mark", None)
    at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
    return at, str(getattr(exc, "problem", None) or exc).replace("\n", " ")
