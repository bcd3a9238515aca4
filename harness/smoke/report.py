"""The smoke matrix as Markdown and HTML (rows: routes; columns: protocol x streaming; each cell
linked to its evidence), as JSON, and as JUnit (one testcase per cell and per catalog check)
for `harness smoke` on its own; in `harness run` its cells are records of the results stream."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.env import env as _env

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
    """One testcase per cell and per catalog check, through the one JUnit writer."""
    from harness.lanes.smoke import cell_record
    from harness.outputs import junit
    name = result["matrix"]["name"]
    junit.write([cell_record(name, c) for c in result["cells"]] + [cell_record(name, c, catalog=True)
                                                                   for c in result["catalog"]], path)
