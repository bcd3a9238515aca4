"""A team's plan as claims in its own namespace (Markdown tables or CSV, columns found by header
name), and the mapping file of claim ids to tests. Bad files name the file and the line or field."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import ConfigError
from harness.repo import import_plan, read_mapping

FIXTURE = Path(__file__).parent / "fixtures" / "repo_py"

MD = """# Plan

| Status | Count |
|---|---|
| planned | 3 |

## Section 6: Credit System

| CM ID | Test | Status | Existing Coverage |
|---|---|---|---|
| CM-6.5.1 | test_auto_refund_on_provider_5xx | MISSING | — |
| CM-6.5.2 | `test_no_refund_on_user_4xx` | COVERED | tests/services/test_credits.py |

### Section 7: Plans

| Claim ID | Test name | Claim | Risk | Priority | Lane | Module | Check | Params |
|:--|:--|:--|:--|:--|:--|:--|:--|:--|
| X-7.1 | test_trial_expires | A trial \\| ends | Revenue | p1 | perf | gw/plans.py | auth.refused | {case: revoked} |
"""


def _plan(tmp_path, text, name="plan.md"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_markdown_tables_under_headings_become_namespaced_claims(tmp_path):
    claims = import_plan(_plan(tmp_path, MD), known_checks={"auth.refused"})
    assert [c.id for c in claims] == ["team:CM-6.5.1", "team:CM-6.5.2", "team:X-7.1"]
    first, second, third = claims
    # report 001's own table: CM ID / Test / Status / Existing Coverage; the status columns are not read
    assert (first.local_id, first.test, first.section, first.risk, first.wave) == (
        "CM-6.5.1", "test_auto_refund_on_provider_5xx", "Section 6: Credit System", "conformance", "P2")
    assert second.test == "test_no_refund_on_user_4xx"      # backticks are formatting, not the name
    assert (third.claim, third.risk, third.wave, third.lane, third.module, third.check, third.params) == (
        "A trial | ends", "revenue", "P1", "Perf", "gw/plans.py", "auth.refused", {"case": "revoked"})
    assert third.section == "Section 7: Plans" and third.where.endswith("plan.md:18")


def test_a_configured_namespace_prefixes_ids_once(tmp_path):
    text = "| id | test |\n|---|---|\n| A-1 | test_a |\n| acme/A-2 | test_b |\n"
    claims = import_plan(_plan(tmp_path, text), namespace="acme/")
    assert [c.id for c in claims] == ["acme/A-1", "acme/A-2"]


@pytest.mark.parametrize("namespace", ["", "CM-"])
def test_a_namespace_that_could_collide_with_harness_ids_is_refused(tmp_path, namespace):
    with pytest.raises(ConfigError, match="namespace"):
        import_plan(_plan(tmp_path, "| id | test |\n|---|---|\n| CM-1.1 | t |\n"), namespace=namespace)


def test_csv_plan_with_section_column_and_semicolons(tmp_path):
    path = _plan(tmp_path, "Section;ID;Test Function;Wave\nRouting;R-1;test_route;P0\n\nCaching;C-1;test_cache;\n",
                 "plan.csv")
    claims = import_plan(path)
    assert [(c.id, c.section, c.test, c.wave, c.where.rsplit(":", 1)[1]) for c in claims] == [
        ("team:R-1", "Routing", "test_route", "P0", "2"), ("team:C-1", "Caching", "test_cache", "P2", "4")]


@pytest.mark.parametrize("text, name, error", [
    ("| id | test |\n|---|---|\n| A-1 | test_a |\n| A-1 | test_b |\n", "plan.md",
     r"plan\.md:4: id: A-1 already on .*plan\.md:3"),
    ("| id | test |\n|---|---|\n| | test_a |\n", "plan.md", r"plan\.md:3: id: empty"),
    ("| id | test |\n|---|---|\n| A 1 | test_a |\n", "plan.md", r"plan\.md:3: id: 'A 1' is not an id"),
    ("| id | test |\n|---|---|\n| A-1 | test_a | extra |\n", "plan.md", r"plan\.md:3: 3 cells, the header has 2"),
    ("| id | claim |\n|---|---|\n| A-1 | x |\n", "plan.md", r"plan\.md:1: no test column"),
    ("| id | test | Test name |\n|---|---|---|\n", "plan.md", r"plan\.md:1: columns 'test' and 'Test name' both"),
    ("| id | test | lane |\n|---|---|---|\n| A-1 | t | somewhere |\n", "plan.md", r"plan\.md:3: lane: 'somewhere'"),
    ("| id | test | check |\n|---|---|---|\n| A-1 | t | no.such |\n", "plan.md", r"plan\.md:3: check: 'no.such'"),
    ("| id | test | params |\n|---|---|---|\n| A-1 | t | [1, 2] |\n", "plan.md", r"plan\.md:3: params: not a mapping"),
    ("| id | test | params |\n|---|---|---|\n| A-1 | t | {a: 1, a: 2} |\n", "plan.md", r"plan\.md:3: params: not a YAML"),
    ("| Status | Count |\n|---|---|\n| x | 1 |\n", "plan.md", r"plan\.md: no claims"),
    ('id,test\nA-1,"unterminated\n', "plan.csv", r"plan\.csv:\d+: (not valid CSV|2 cells|1 cells)"),
])
def test_bad_plans_name_file_line_and_field(tmp_path, text, name, error):
    with pytest.raises(ConfigError, match=error):
        import_plan(_plan(tmp_path, text, name), known_checks={"auth.refused"})


def test_missing_plan_file(tmp_path):
    with pytest.raises(ConfigError, match="no such plan file"):
        import_plan(tmp_path / "nope.md")


def test_fixture_plan_reads_sixteen_claims_in_six_sections():
    claims = import_plan(FIXTURE / "PLAN.md", known_checks={"auth.refused", "chaos.websocket_drop"})
    assert len(claims) == 16
    assert len({c.section for c in claims}) == 6
    assert [(c.id, c.check, c.params) for c in claims if c.check] == [
        ("team:GW-6.1", "chaos.websocket_drop", {}), ("team:GW-7.1", "auth.refused", {"case": "revoked"})]


def test_mapping_accepts_local_or_namespaced_ids_strings_or_lists(tmp_path):
    claims = import_plan(_plan(tmp_path, "| id | test |\n|---|---|\n| A-1 | t |\n| A-2 | u |\n"))
    path = tmp_path / "map.yaml"
    path.write_text("claims:\n  A-1: tests/test_a.py::test_x\n  team:A-2:\n    - pkg.TestY\n    - tests/test_b.py\n")
    assert read_mapping(path, claims) == {"team:A-1": ["tests/test_a.py::test_x"],
                                          "team:A-2": ["pkg.TestY", "tests/test_b.py"]}


@pytest.mark.parametrize("text, error", [
    ("A-1: t\nB-9: u\n", r"map\.yaml:2: B-9: no such claim in the plan"),
    ("A-1: []\n", r"map\.yaml:1: A-1: must be a test id or a list"),
    ("A-1:\n  - t\n  - 3\n", r"map\.yaml:1: A-1: must be a test id or a list"),
    ("A-1: t\nA-1: u\n", r"map\.yaml:2:1: not valid YAML: key 'A-1' appears twice"),
    ("- A-1\n", r"map\.yaml: must be a mapping of claim id -> test ids"),
    ("A-1: [t\n", r"map\.yaml:\d+:\d+: not valid YAML"),
])
def test_bad_mapping_names_file_line_and_claim(tmp_path, text, error):
    claims = import_plan(_plan(tmp_path, "| id | test |\n|---|---|\n| A-1 | t |\n"))
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=error):
        read_mapping(path, claims)
