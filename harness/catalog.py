"""The claim catalog: matrices/claims/*.yaml, one file per section, validated on load."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness import paths, yaml_strict
from harness.config import ConfigError, _loc
from harness.results.record import natural_key

MATRICES = paths.MATRICES
DEFAULT_DIR = MATRICES / "claims"
LANE_DIRS = ("claims", "chaos", "process")   # the subdirectories of matrices/ that hold claims
RISKS = ("revenue", "reliability", "conformance", "security")


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^CM-\d+(\.\d+){1,3}$")
    test: str = Field(pattern=r"^test_[a-z0-9_]+$")
    claim: str = Field(min_length=3)               # the promise, in one sentence
    risk: Literal["revenue", "reliability", "conformance", "security"]
    wave: Literal["P0", "P1", "P2", "P3"]
    check: Optional[str] = None                    # None: no automated check yet (MISSING)
    params: dict[str, Any] = {}
    group: Optional[str] = None   # claims sharing gateway state (one rate-limit window...) run one after another
    # Planning fields, shown in the report: who answers for it, what breaking it means, where it is tracked.
    owner: Optional[str] = None
    impact: Optional[str] = None                   # one sentence: the consequence when the promise is broken
    issue: Optional[str] = None                    # a link
    # Filled from the file:
    section: str = ""
    lane: str = ""


class SectionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    section: str = Field(min_length=1)
    lane: str = "Conformance"
    claims: list[Claim] = Field(min_length=1)


def load_file(path: Path) -> list[Claim]:
    try:
        data = yaml_strict.load(path.read_text())
        sf = SectionFile.model_validate(data)
    except yaml.YAMLError as exc:
        at, what = yaml_strict.describe(exc)
        raise ConfigError(f"{path}{at}: not valid YAML: {what}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"{path}: {_loc(tuple(err['loc']))}: {err['msg']}") from None
    for c in sf.claims:
        c.section, c.lane = sf.section, sf.lane
    return sf.claims


def claim_dirs(matrices: Path = MATRICES, dirs: tuple[str, ...] = LANE_DIRS) -> list[Path]:
    return [matrices / d for d in dirs if (matrices / d).is_dir()]


def ids_in(matrices: Path, dirs: tuple[str, ...]) -> set[str]:
    """The ids of the claims filed under these subdirectories of matrices/ (a lane's share)."""
    return {c.id for d in claim_dirs(matrices, dirs) for f in sorted(d.glob("*.yaml")) for c in load_file(f)}


Checks = Union[set[str], Mapping[str, Callable[..., Any]]]   # names, or the registry (params validated too)


def load_all(matrices: Path = MATRICES, known_checks: Optional[Checks] = None) -> list[Claim]:
    """Every claim of every lane under matrices/ (claims/, chaos/, process/), ids unique across them."""
    files = [f for d in claim_dirs(matrices) for f in sorted(d.glob("*.yaml"))]
    return _load_files(files, matrices, known_checks)


def load(directory: Path = DEFAULT_DIR, known_checks: Optional[Checks] = None) -> list[Claim]:
    return _load_files(sorted(directory.glob("*.yaml")), directory, known_checks)


def _load_files(files: list[Path], directory: Path, known_checks: Optional[Checks]) -> list[Claim]:
    claims: list[Claim] = []
    if not files:
        raise ConfigError(f"{directory}: no claim files (*.yaml); point --matrices or HARNESS_MATRICES at a "
                          "catalog (a checkout's matrices/)")
    file_of: dict[str, Path] = {}
    for path in files:
        for c in load_file(path):
            claims.append(c)
            file_of.setdefault(c.id, path)
    seen: dict[str, str] = {}
    slots: dict[tuple[str, int], str] = {}
    for c in claims:
        where = file_of[c.id]
        if c.id in seen:
            raise ConfigError(f"{directory}: claim id {c.id} appears twice ({seen[c.id]} and {c.section})")
        seen[c.id] = c.section
        if known_checks is not None and c.check is not None and c.check not in known_checks:
            raise ConfigError(f"{where}: {c.id}: check {c.check!r} does not exist")
        if known_checks is not None and c.check is not None:
            from harness.checks.base import REGISTRY
            from harness.checks.params import problem
            fn = known_checks[c.check] if isinstance(known_checks, Mapping) else REGISTRY.get(c.check)
            wrong = problem(fn, dict(c.params)) if fn else None
            if wrong:
                raise ConfigError(f"{where}: {c.id}: {wrong}")
        # A slot is a model a stateful claim has to itself (roles.breaker[n], roles.rate_limit[n]):
        # two claims of one family on one slot would share a breaker or a window, and flake.
        if isinstance(c.params.get("slot"), int) and c.check:
            family = c.check.split(".")[0]
            other = slots.setdefault((family, c.params["slot"]), c.id)
            if other != c.id:
                raise ConfigError(f"{where}: {c.id}: params.slot: {c.params['slot']} is also {other}'s "
                                  f"({family} claims need a model each)")
    return claims


def id_key(claim_id: str) -> tuple:
    """The one sort order of ids (CM-2.9 before CM-2.10), shared with every record."""
    return natural_key(claim_id)
