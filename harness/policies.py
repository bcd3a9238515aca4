"""Failover presets (matrices/policies.yaml) merged with what a harness.yaml says explicitly."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import paths, yaml_strict
from harness.config import ConfigError, Failover

POLICIES = paths.MATRICES / "policies.yaml"


@dataclass(frozen=True)
class FailoverPolicy:
    on_status: frozenset[int]
    on_connect_error: bool
    on_disconnect: bool

    def fails_over(self, fault: int | str) -> bool:
        if fault == "connect_error":
            return self.on_connect_error
        if fault == "disconnect":
            return self.on_disconnect
        return int(fault) in self.on_status


def presets(path: Path = POLICIES) -> dict[str, dict]:
    if not path.is_file():
        return {}   # a catalog without presets: a harness.yaml naming one is told which exist (none)
    return yaml_strict.load(path.read_text()) or {}


def resolve(f: Failover, path: Path = POLICIES) -> FailoverPolicy:
    base: dict = {}
    if f.preset:
        known = presets(path)
        if f.preset not in known:
            raise ConfigError(f"promises.failover.preset: {f.preset!r} is not one of {sorted(known)}")
        base = known[f.preset]
    pick = lambda name, default: getattr(f, name) if getattr(f, name) is not None else base.get(name, default)  # noqa: E731
    return FailoverPolicy(frozenset(pick("on_status", [])), bool(pick("on_connect_error", False)),
                          bool(pick("on_disconnect", False)))
