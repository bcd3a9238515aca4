"""Every promise a built-in target makes has a source (issue 15: a FAIL against a real gateway is a
finding only when the promise it broke is the gateway's own).

Written over the config schema, not over a list of today's promises: whatever field of `Promises` a
target file sets, `promises.sources` must name it (the field itself, or `field.sub` for a part of
it), so a promise added without a source fails here. A source that cites a file and line of an
installed Python package at the installed version (`litellm/router.py:1151...@1.108.7`) must point at
a file of that package that has those lines.
"""
from __future__ import annotations

import importlib.metadata
import os
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from harness.config import Promises, load

TARGETS = Path(__file__).resolve().parents[1] / "harness" / "targets"
TARGET_FILES = sorted(p for p in TARGETS.glob("*.yaml") if yaml.safe_load(p.read_text()).get("promises") is not None)


def promises_set(path: Path) -> dict:
    """The promises as written in the file (not the defaults the schema fills in)."""
    return yaml.safe_load(path.read_text())["promises"]


def covering(sources: dict, field: str) -> list[str]:
    return [k for k in sources if k == field or k.startswith(field + ".")]


def unsourced(promises: dict) -> list[str]:
    """The fields of the schema that `promises` sets and `promises.sources` does not name."""
    sources = promises.get("sources") or {}
    return [f for f in Promises.model_fields if f != "sources" and f in promises and not covering(sources, f)]


def test_every_target_with_promises_is_checked():
    assert {p.stem for p in TARGET_FILES} >= {"litellm", "cliproxyapi", "gozen"}


@pytest.mark.parametrize("path", TARGET_FILES, ids=lambda p: p.stem)
def test_every_promise_set_has_a_source(path):
    promises = promises_set(path)
    sources = promises.get("sources") or {}
    unknown = sorted(set(promises) - set(Promises.model_fields))
    assert not unknown, f"{path.name}: promises.{unknown} are not promises of the schema"
    missing = unsourced(promises)
    assert not missing, f"{path.name}: promises without a source in promises.sources: {missing}"
    empty = [k for k, v in sources.items() if not isinstance(v, str) or not v.strip()]
    assert not empty, f"{path.name}: empty sources {empty}"
    # The file loads, sources and all (config.py rejects a source naming no promise).
    cfg, _ = load(path)
    assert set(cfg.promises.sources) == set(sources)


def test_a_promise_without_a_source_is_caught():
    """A target that adds a promise and no source for it is caught, whichever promise it is."""
    promises = promises_set(TARGETS / "litellm.yaml")
    assert unsourced(promises) == []
    for field in Promises.model_fields:
        if field == "sources":
            continue
        bare = {k: v for k, v in promises.items() if k != "sources"}
        bare[field] = promises.get(field, "something")
        bare["sources"] = {k: v for k, v in promises["sources"].items() if k != field and not k.startswith(field + ".")}
        assert unsourced(bare) == [field], field
    # A source for a part of a promise (`breaker.refusal`) covers it; a source naming another does not.
    assert unsourced({"breaker": {}, "sources": {"breaker.refusal": "selector.go"}}) == []
    assert unsourced({"breaker": {}, "sources": {"breakers": "x", "retries": "y"}}) == ["breaker"]


# "litellm/router.py:7968-8248 ...@1.108.7": a path inside a package, a line or a range.
CITE = re.compile(r"\b(?P<path>(?P<pkg>[A-Za-z_][\w]*)/[\w/.-]+\.py):(?P<start>\d+)(?:-(?P<end>\d+))?")
VERSION = re.compile(r"@v?(?P<version>\d+(?:\.\d+)+)")


def package_citations() -> list[tuple[str, str, str, int, int]]:
    """(target, package, path, first line, last line) for every source line citing an installed package
    at the version installed here."""
    out = []
    for path in TARGET_FILES:
        for key, text in (promises_set(path).get("sources") or {}).items():
            versions = {m["version"] for m in VERSION.finditer(text)}
            for m in CITE.finditer(text):
                pkg = m["pkg"]
                if importlib.util.find_spec(pkg) is None:
                    continue          # a Go gateway's path, or a package not installed here
                try:
                    installed = importlib.metadata.version(pkg)
                except importlib.metadata.PackageNotFoundError:
                    continue
                if installed not in versions:
                    continue          # cited at another version: its lines cannot be checked here
                start = int(m["start"])
                out.append((f"{path.stem}:{key}", pkg, m["path"], start, int(m["end"] or start)))
    return out


def test_litellm_sources_cite_the_installed_litellm():
    """The embedded target's sources are lines of the LiteLLM installed here (ci/constraints.txt pins it)."""
    if importlib.util.find_spec("litellm") is None:
        if os.environ.get("CI"):
            pytest.fail("litellm is not installed: ci/setup.sh installs it")
        pytest.skip("litellm is not installed")
    cited = [c for c in package_citations() if c[1] == "litellm"]
    text = " ".join(str(v) for v in (promises_set(TARGETS / "litellm.yaml").get("sources") or {}).values())
    installed, cited_versions = importlib.metadata.version("litellm"), {m["version"] for m in VERSION.finditer(text)}
    # Another LiteLLM (ci/constraints.txt moved): its lines moved too, and what it promises may have.
    assert cited_versions == {installed}, (f"litellm.yaml's sources cite LiteLLM {sorted(cited_versions)}, "
                                           f"{installed} is installed: read its source again and update them")
    assert len(cited) >= 10, cited


@pytest.mark.parametrize("where,pkg,rel,start,end", package_citations(), ids=lambda v: str(v))
def test_cited_lines_exist_in_the_installed_package(where, pkg, rel, start, end):
    spec = importlib.util.find_spec(pkg)
    root = Path(next(iter(spec.submodule_search_locations))).parent
    file = root / rel
    assert file.is_file(), f"{where}: {rel} is not a file of the installed {pkg}"
    lines = file.read_text(errors="replace").count("\n") + 1
    assert start <= end <= lines, f"{where}: {rel}:{start}-{end} is past its end ({lines} lines)"


@pytest.mark.parametrize("target", ["litellm", "cliproxyapi"])
def test_every_protocol_offered_has_a_source(target):
    """Offering a client protocol promises its published schema (CM-27): each one the target declares is sourced
    as protocols.<name>, and a source naming no protocol is refused."""
    cfg, _ = load(TARGETS / f"{target}.yaml")
    from harness.config import PROTOCOLS
    offered = [p for p in cfg.target.protocols if p in PROTOCOLS]
    assert offered and not [p for p in offered if f"protocols.{p}" not in cfg.promises.sources], offered
    with pytest.raises(ValueError, match="names no protocol"):
        Promises(sources={"protocols.grpc": "somewhere"})
