"""JUnit XML, whoever wrote it: pytest (--junitxml), gotestsum and go-junit-report, jest-junit,
Maven Surefire and the like. A <testsuites> or a lone <testsuite> root, suites nested in suites,
<skipped>, <failure>, <error>, `time` attributes (Surefire's "1,234.5" included).

junitparser reads the elements; the file is parsed here, with line numbers, so a bad file is a
ConfigError that names the line."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from xml.parsers import expat
from pathlib import Path
from typing import Iterator, Literal, Optional

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite
from junitparser.junitparser import JUnitXmlError

from harness.config import ConfigError
from harness.repo import messages
from harness.repo.model import DETAILS_MAX, ERROR, FAILED, PASSED, SKIPPED, TestResult

Flavor = Literal["auto", "pytest", "go", "generic"]
_GO_TEST = re.compile(r"^(Test|Example|Benchmark|Fuzz)")


def read_junit(path: Path, flavor: Flavor = "auto") -> list[TestResult]:
    """Every <testcase> of the file, as results with ids in harness.repo's form (see model)."""
    path = Path(path)
    try:
        root, lines = _parse(path.read_bytes())
        xml = JUnitXml.fromroot(root)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such JUnit file") from None
    except expat.ExpatError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.offset + 1}: not valid XML: {expat.errors.messages[exc.code]}") from None
    except JUnitXmlError:
        raise ConfigError(f"{path}:1: root element <{root.tag}>: expected <testsuites> or <testsuite>") from None
    cases = list(_walk(xml))
    kind = _flavor(cases) if flavor == "auto" else flavor
    return [_result(path, lines, suite, case, kind) for suite, case in cases]


def _parse(data: bytes) -> tuple[ET.Element, dict[int, int]]:
    """The tree and, for each element (by id), the line its start tag is on: expat drives an
    ElementTree builder directly, because ElementTree's own parser does not tell lines."""
    lines: dict[int, int] = {}
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()

    def start(tag: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start(tag, attrs))] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.Parse(data, True)
    return builder.close(), lines


def _walk(node: JUnitXml | TestSuite) -> Iterator[tuple[TestSuite, TestCase]]:
    suites = list(node) if isinstance(node, JUnitXml) else [node]
    for suite in suites:
        for case in suite.iterchildren(TestCase):
            yield suite, case
        for inner in suite.testsuites():       # nested suites (jest-junit, some Surefire reports)
            yield from _walk(inner)


def _flavor(cases: list[tuple[TestSuite, TestCase]]) -> str:
    if any(s.name == "pytest" for s, _ in cases):    # pytest's default junit_suite_name
        return "pytest"
    if cases and all(_GO_TEST.match(c.name or "") and (c.classname or "") == (s.name or "") for s, c in cases):
        return "go"                                   # gotestsum, go-junit-report: classname = package
    return "generic"


def _result(path: Path, lines: dict[int, int], suite: TestSuite, case: TestCase, kind: str) -> TestResult:
    where = f"{path}:{lines.get(id(case._elem), 0)}: testcase"
    name = case._elem.get("name")
    if not name:
        raise ConfigError(f"{where}: name: missing")
    duration = _time(case._elem.get("time"), where)
    classname = case._elem.get("classname") or ""
    file = case._elem.get("file") or ""
    if kind == "pytest":
        test_id, file, category = _pytest_id(classname, name, file)
    elif kind == "go":
        test_id, file, category = f"{classname}.{name}", "", classname
    else:
        owner = file or classname or suite.name or ""
        test_id = f"{owner}::{name}" if owner else name
        category = str(Path(file).parent) if file else (suite.name or classname)
    outcome, reason, message, details = _outcome(case)
    if file and test_id.startswith(file + "::"):
        name = test_id[len(file) + 2:]             # with its class: TestSplit::test_split[1]
    return TestResult(id=test_id, name=name, file=file, category=category, outcome=outcome, duration_s=duration,
                      skip_reason=reason, message=message, details=details[:DETAILS_MAX])


def _time(raw: Optional[str], where: str) -> float:
    if raw is None or raw.strip() == "":
        return 0.0
    try:
        return float(raw.replace(",", ""))       # Surefire writes 1,234.5 in some locales
    except ValueError:
        raise ConfigError(f"{where}: time: not a number: {raw!r}") from None


def _pytest_id(classname: str, name: str, file: str) -> tuple[str, str, str]:
    """pytest writes classname `tests.unit.test_x.TestC` for tests/unit/test_x.py::TestC; the class
    part starts at the first capitalised segment (the `file` attribute, when present, settles it)."""
    parts = classname.split(".") if classname else []
    if file:
        module = file[:-3].replace("/", ".") if file.endswith(".py") else file
        classes = parts[len(module.split(".")):] if classname.startswith(module) else []
    else:
        cut = next((i for i, p in enumerate(parts) if p[:1].isupper()), len(parts))
        file = "/".join(parts[:cut]) + ".py" if cut else ""
        classes = parts[cut:]
    test_id = "::".join([file, *classes, name]) if file else "::".join([*classes, name])
    return test_id, file, str(Path(file).parent) if file else ""


def _outcome(case: TestCase) -> tuple[str, str, str, str]:
    """(outcome, skip reason, message, details)."""
    for kind, outcome in ((Error, ERROR), (Failure, FAILED)):
        found = [r for r in case.result if isinstance(r, kind)]
        if found:
            r = found[0]
            return outcome, "", messages.pick(r.message or "", r.text or ""), (r.text or r.message or "")
    skipped = [r for r in case.result if isinstance(r, Skipped)]
    if skipped:
        r = skipped[0]
        return SKIPPED, messages.pick(r.message or "", r.text or ""), "", ""
    return PASSED, "", "", ""
