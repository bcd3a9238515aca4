"""The claim catalog: matrices/claims/*.yaml, one file per section, validated on load."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness import paths, yaml_strict
from harness.config import ConfigError, _loc

MATRICES = paths.MATRICES
DEFAULT_DIR = MATRICES / "claims"
LANE_DIRS = ("claims", "chaos")   # the subdirectories of matrices/ that hold claims
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


def claim_dirs(matrices: Path = MATRICES) -> list[Path]:
    return [matrices / d for d in LANE_DIRS if (matrices / d).is_dir()]


def load_all(matrices: Path = MATRICES, known_checks: Optional[set[str]] = None) -> list[Claim]:
    """Every claim of every lane under matrices/ (claims/, chaos/), ids unique across them."""
    files = [f for d in claim_dirs(matrices) for f in sorted(d.glob("*.yaml"))]
    return _load_files(files, matrices, known_checks)


def load(directory: Path = DEFAULT_DIR, known_checks: Optional[set[str]] = None) -> list[Claim]:
    return _load_files(sorted(directory.glob("*.yaml")), directory, known_checks)


def _load_files(files: list[Path], directory: Path, known_checks: Optional[set[str]]) -> list[Claim]:
    claims: list[Claim] = []
    if not files:
        raise ConfigError(f"{directory}: no claim files (*.yaml); point --matrices or HARNESS_MATRICES at a "
                          "catalog (a checkout's matrices/)")
    for path in files:
        claims += load_file(path)
    seen: dict[str, str] = {}
    for c in claims:
        if c.id in seen:
            raise ConfigError(f"{directory}: claim id {c.id} appears twice ({seen[c.id]} and {c.section})")
        seen[c.id] = c.section
        if known_checks is not None and c.check is not None and c.check not in known_checks:
            raise ConfigError(f"{directory}: {c.id}: check {c.check!r} does not exist")
    return claims


def id_key(claim_id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in claim_id[3:].split("."))
