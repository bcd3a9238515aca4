"""Adds verdicts reached outside pytest (the load lane) to the JUnit file pytest wrote, one
testcase per claim, so a CI check shows them beside the others."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

FAILED, SKIPPED = ("FAIL", "ERROR"), ("UNSUPPORTED", "MISSING", "NOT RUN")


def _open(path: Path) -> tuple[ET.ElementTree, ET.Element]:
    """The JUnit file as <testsuites> (created when missing), ready for one more suite."""
    if path.exists():
        tree = ET.parse(path)
        root = tree.getroot()
        if root.tag != "testsuites":   # a lone <testsuite>: wrap it, so a second suite fits beside it
            wrapper = ET.Element("testsuites")
            wrapper.append(root)
            root, tree = wrapper, ET.ElementTree(wrapper)
    else:
        root = ET.Element("testsuites")
        tree = ET.ElementTree(root)
    return tree, root


def append_suite(path: Path, suite: ET.Element) -> None:
    tree, root = _open(path)
    root.append(suite)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def append(path: Path, suite_name: str, records: list[dict[str, Any]]) -> None:
    if not records:
        return
    tree, root = _open(path)
    failures = sum(r["status"] in FAILED for r in records)
    skipped = sum(r["status"] in SKIPPED for r in records)
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(records)), failures=str(failures),
                          errors="0", skipped=str(skipped),
                          time=f"{sum(r.get('duration_s', 0) for r in records):.3f}")
    for r in records:
        case = ET.SubElement(suite, "testcase", classname=f"{suite_name}.{r['section']}",
                             name=f"{r['test']}[{r['id']}]", time=f"{r.get('duration_s', 0):.3f}")
        if r["status"] in FAILED:
            ET.SubElement(case, "failure", message=f"{r['id']} {r['status']}: {r['reason']}").text = r["claim"]
        elif r["status"] in SKIPPED:
            ET.SubElement(case, "skipped", message=f"{r['status']}: {r['reason']}")
        ET.SubElement(ET.SubElement(case, "properties"), "property", name="verdict", value=r["status"])
    tree.write(path, encoding="utf-8", xml_declaration=True)
