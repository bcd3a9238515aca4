"""The smoke matrix as Markdown and HTML (rows: routes; columns: protocol x streaming; each cell
linked to its evidence), as JSON, and as JUnit (one testcase per cell and per catalog check)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.report.env import env as _env

SKIPPED = ("NOT OFFERED",)


def grid(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows in matrix order, each with its cells in column order (index into result['cells'])."""
    at = {(c["row"], c["protocol"], c["stream"]): i for i, c in enumerate(result["cells"])}
    return [{**row, "cells": [(at.get((row["name"], col["protocol"], col["stream"])), col) for col in result["columns"]]}
            for row in result["rows"]]


def write_outputs(result: dict[str, Any], out: Path) -> None:
    (out / "smoke.json").write_text(json.dumps(result, indent=1))
    ctx = {"r": result, "grid": grid(result), "cells": result["cells"]}
    (out / "smoke.md").write_text(_env.get_template("smoke.md.j2").render(**ctx))
    (out / "smoke.html").write_text(_env.get_template("smoke.html.j2").render(**ctx))
    write_junit(result, out / "junit.xml")


def write_junit(result: dict[str, Any], path: Path) -> None:
    root = ET.Element("testsuites")
    root.append(junit_suite(result))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def junit_suite(result: dict[str, Any]) -> ET.Element:
    """One testcase per cell (classname smoke.<route>, name <protocol>[plain|stream]) and per
    catalog check, so a CI required check shows exactly which route broke."""
    cases = [(f"smoke.{c['row']}", f"{c['protocol']}[{'stream' if c['stream'] else 'plain'}]", c) for c in result["cells"]]
    cases += [("smoke.catalog", c["id"], c) for c in result["catalog"]]
    suite = ET.Element("testsuite", name=f"smoke-{result['matrix']['name']}", tests=str(len(cases)),
                          failures=str(sum(c["status"] == "FAIL" for _, _, c in cases)), errors="0",
                          skipped=str(sum(c["status"] in SKIPPED for _, _, c in cases)))
    for classname, name, c in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=name)
        if c["status"] == "FAIL":
            ET.SubElement(case, "failure", message=c["reason"][:500]).text = json.dumps(c["evidence"], indent=1)[:4000]
        elif c["status"] in SKIPPED:
            ET.SubElement(case, "skipped", message=f"{c['status']}: {c['reason']}")
    return suite
