"""Everything in a catalog is checked when it loads: a check's params against its signature (names,
required ones, enumerations), toxics and their expressions, slots shared by two stateful claims,
failover presets. Each mistake is one line naming file, claim and field, exit 2, before anything
starts; toxic expressions are parsed, never eval'd."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import catalog
from harness.expr import ExprError, evaluate, parse

MATRICES = Path(__file__).resolve().parent.parent / "matrices"
CHAOS = "chaos/19-upstream-network.yaml"


def validate(tmp_path: Path, file: str, old: str, new: str) -> subprocess.CompletedProcess:
    copy = tmp_path / "matrices"
    shutil.copytree(MATRICES, copy)
    text = (copy / file).read_text()
    assert old in text, old
    (copy / file).write_text(text.replace(old, new, 1))
    return subprocess.run([sys.executable, "-m", "harness", "validate", "--matrices", str(copy)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "HARNESS_MATRICES": str(copy)})


@pytest.mark.parametrize("file,old,new,says", [
    # a misspelled `when` once meant "no fault injected", and the scenario could still PASS
    (CHAOS, "when: after_first_token", "when: after_first_tokn", "CM-19.3: params.when: Input should be 'before_request' or 'after_first_token'"),
    (CHAOS, "params: {expect: clean_failure, toxics: [{type: timeout",
     "params: {expect: clean_fail, toxics: [{type: timeout", "CM-19.1: params.expect: Input should be 'complete' or 'clean_failure'"),
    (CHAOS, "{type: timeout, attributes: {timeout: 0}}]}", "{type: timeoutt, attributes: {timeout: 0}}]}",
     "CM-19.1: params.toxics[0].type: 'timeoutt' is not one of"),
    (CHAOS, "latency: total_deadline_ms + 3000", "latency: total_deadline_ms + ().__class__.__base__",
     "CM-19.2: params.toxics[0].attributes.latency: 'total_deadline_ms + ().__class__.__base__': Attribute is not allowed"),
    (CHAOS, "latency: total_deadline_ms + 3000", "latency: total_deadlin_ms + 3000",
     "unknown name 'total_deadlin_ms'"),
    (CHAOS, "{type: timeout, attributes: {timeout: 0}}]}", "{type: timeout, attributes: {latency: 0}}]}",
     "params.toxics[0].attributes.latency: not an attribute of timeout"),
    (CHAOS, "params: {expect: clean_failure, toxics: [{type: timeout", "params: {expectt: clean_failure, toxics: [{type: timeout",
     "CM-19.1: params.expectt: no such parameter"),
    ("claims/02-rate-limits.yaml", "params: {aspect: over, slot: 1}", "params: {aspect: over, slot: 0}",
     "CM-2.2: params.slot: 0 is also CM-2.1's"),
    ("claims/02-rate-limits.yaml", "params: {aspect: over, slot: 1}", "params: {aspect: over}", "CM-2.2: params.slot: required"),
    # enumerations and oracle names of the other checks: once a KeyError (ERROR) at run time
    ("claims/02-rate-limits.yaml", "params: {aspect: under, slot: 0}", "params: {aspect: undr, slot: 0}",
     "CM-2.1: params.aspect: Input should be 'under', 'over', 'headers', 'not_forwarded' or 'reset'"),
    ("claims/11-openai-streaming.yaml", "params: {oracle: chunk_objects}", "params: {oracle: chunk_object}",
     "CM-10.2.2: params.oracle: 'chunk_object' is not one of"),
    ("claims/15-errors.yaml", "params: {case: missing_messages}", "params: {case: missing_message}",
     "CM-15.1.5: params.case: 'missing_message' is not one of"),
])
def test_a_catalog_mistake_is_one_line_and_exit_2(tmp_path, file, old, new, says):
    r = validate(tmp_path, file, old, new)
    assert r.returncode == 2, r.stdout + r.stderr
    assert says in r.stderr and file.split("/")[-1] in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_shipped_catalog_is_valid():
    from harness.checks.base import load_all
    assert len(catalog.load_all(MATRICES, known_checks=load_all())) >= 131


def test_a_failover_preset_typo_stops_the_run_before_anything_starts(tmp_path):
    embedded = (MATRICES.parent / "harness" / "targets" / "litellm.yaml").read_text()
    cfg = tmp_path / "h.yaml"
    typo = re.sub(r"preset: [\w-]+", "preset: provider-fault", embedded, count=1)   # whichever preset it promises
    assert typo != embedded
    cfg.write_text(typo)
    r = subprocess.run([sys.executable, "-m", "harness", "run", "-c", str(cfg), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "promises.failover.preset: 'provider-fault' is not one of" in r.stderr, r.stderr
    assert str(cfg) in r.stderr and not (tmp_path / "o" / "results.jsonl").exists()


def test_expressions_are_arithmetic_over_known_names_only():
    names = {"total_deadline_ms": 8000.0, "request_timeout_ms": 2000.0}
    assert evaluate("total_deadline_ms + 3000", names) == 11000.0
    assert evaluate("-(request_timeout_ms / 2) * 3", names) == -3000.0
    for bad, why in [("__import__('os')", "Call"), ("().__class__", "Attribute"), ("names + 1", "unknown name 'names'"),
                     ("1 ** 100000", "only + - * /"), ("'a' * 3", "only numbers"), ("x if 1 else 2", "IfExp"),
                     ("1 / 0", "division by zero"), ("[1][0]", "Subscript"), ("True + 1", "only numbers")]:
        with pytest.raises(ExprError, match=re.escape(why)):
            evaluate(bad, names)


@given(st.text(max_size=40))
def test_no_text_gets_past_the_walker_except_arithmetic(text):
    try:
        tree = parse(text, ["a"])
    except ExprError:
        return
    import ast
    allowed = (ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant, ast.operator, ast.unaryop, ast.Load)
    assert all(isinstance(n, allowed) for n in ast.walk(tree))
