"""The claim catalog: enough claims, each with a check that exists, ids unique, schema enforced."""
from __future__ import annotations

import pytest

from harness import catalog
from harness.checks.base import load_all
from harness.config import ConfigError

SPINE_SECTIONS = ("10.1 ", "10.2 ", "10.3 ", "9. ", "15. ", "11. ")


def test_catalog_loads_with_40_plus_working_checks():
    claims = catalog.load(known_checks=set(load_all()))
    with_check = [c for c in claims if c.check]
    assert len(with_check) >= 40
    assert len({c.id for c in claims}) == len(claims)
    assert len({c.test for c in claims}) == len(claims)
    for prefix in SPINE_SECTIONS:
        assert any(c.section.startswith(prefix) for c in with_check), prefix
    assert {c.risk for c in claims} >= {"revenue", "reliability", "conformance", "security"}


def test_unknown_check_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "section: S\nclaims:\n  - {id: CM-1.1, test: test_x, claim: a claim, risk: security, wave: P0, check: no.such}\n")
    with pytest.raises(ConfigError, match="CM-1.1: check 'no.such' does not exist"):
        catalog.load(tmp_path, known_checks=set(load_all()))


@pytest.mark.parametrize("line,needle", [
    ("{id: CM-1, test: test_x, claim: abc, risk: security, wave: P0}", "claims[0].id"),
    ("{id: CM-1.1, test: x, claim: abc, risk: security, wave: P0}", "claims[0].test"),
    ("{id: CM-1.1, test: test_x, claim: abc, risk: money, wave: P0}", "claims[0].risk"),
    ("{id: CM-1.1, test: test_x, claim: abc, risk: security, wave: P9}", "claims[0].wave"),
    ("{id: CM-1.1, test: test_x, claim: abc, risk: security, wave: P0, chek: a}", "claims[0].chek"),
])
def test_bad_claim_names_the_field(tmp_path, line, needle):
    (tmp_path / "a.yaml").write_text(f"section: S\nclaims:\n  - {line}\n")
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        catalog.load(tmp_path)


def test_duplicate_ids_refused(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            f"section: {name}\nclaims:\n  - {{id: CM-1.1, test: test_{name}, claim: abc, risk: security, wave: P0}}\n")
    with pytest.raises(ConfigError, match="CM-1.1 appears twice"):
        catalog.load(tmp_path)


def test_a_key_given_twice_is_refused_not_silently_overwritten(tmp_path):
    (tmp_path / "a.yaml").write_text("section: S\nclaims:\n  - id: CM-1.1\n    test: test_x\n    claim: a claim\n"
                                     "    risk: security\n    wave: P0\n    check: auth.refused\n    check: chaos.scenario\n")
    with pytest.raises(ConfigError, match=r"a.yaml:9:5: not valid YAML: key 'check' appears twice \(first on line 8\)"):
        catalog.load(tmp_path)
