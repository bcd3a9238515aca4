"""junit.xml: one test suite per lane, one test case per record, written with junitparser.

Only PASS is a pass. FAIL and SAFE are failures (the promise was not kept); ERROR is an error
(not judged); PARTIAL, UNSUPPORTED, MISSING and NOT RUN are skipped with the status and reason;
a waived finding is skipped with its waiver, until the waiver expires."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from harness.results.record import Record, Status

FAILURES = (Status.FAIL, Status.SAFE)
SKIPS = (Status.PARTIAL, Status.UNSUPPORTED, Status.MISSING, Status.NOT_RUN)


def case_of(r: Record) -> TestCase:
    case = TestCase(f"{r.test or r.id}[{r.id}]", classname=f"{r.lane}.{r.section}", time=round(r.duration_s or 0, 3))
    message = f"{r.id} {r.status}: {r.reason}"[:2000]
    if r.waived:
        case.result = [Skipped(f"WAIVED until {r.waiver['expires']} ({r.waiver['reason']}): {message}"[:2000])]
    elif r.status in FAILURES:
        result = Failure(message, str(r.status))
        result.text = f"claim: {r.claim}\nevidence: {json.dumps(r.evidence, indent=1, default=str)[:4000]}"
        case.result = [result]
    elif r.status == Status.ERROR:
        case.result = [Error(message, "NOT JUDGED")]
    elif r.status in SKIPS:
        case.result = [Skipped(message)]
    return case


def write(rows: list[Record], path: Path, name: str = "llm-gateway-harness") -> None:
    """`rows`: every record of the run (the view's rows: NOT RUN ones included, as skipped)."""
    xml = JUnitXml(name)
    suites: dict[str, TestSuite] = {}
    for r in rows:
        suite = suites.get(r.lane)
        if suite is None:
            suite = suites[r.lane] = TestSuite(r.lane)
            xml.add_testsuite(suite)
        suite.add_testcase(case_of(r))
    for suite in suites.values():
        suite.update_statistics()
    xml.update_statistics()
    xml.write(str(path), pretty=True)


def counts(path: Path) -> dict[str, Any]:
    """What a CI reads back: tests, failures, errors, skipped over every suite."""
    xml = JUnitXml.fromfile(str(path))
    return {"tests": xml.tests, "failures": xml.failures, "errors": xml.errors, "skipped": xml.skipped}
