"""The smoke matrix as Markdown and HTML (rows: routes; columns: protocol x streaming; each cell
linked to its evidence), as JSON, and as JUnit (one testcase per cell and per catalog check)
for `harness smoke` on its own; in `harness run` its cells are records of the results stream."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.env import env as _env
from harness.smoke.matrix import CASES

def grid(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows in matrix order, each with its cells in column order (index into result['cells']); a
    route with tool-call cells has a row of its own per case under it ("route [tools]")."""
    at = {(c["row"], c["protocol"], c["stream"], c.get("case", "text")): i for i, c in enumerate(result["cells"])}
    present = {c.get("case", "text") for c in result["cells"]}
    cases = [c for c in CASES if c == "text" or c in present]
    out = []
    for row in result["rows"]:
        for case in cases:
            cells = [(at.get((row["name"], col["protocol"], col["stream"], case)), col) for col in result["columns"]]
            if case == "text" or any(i is not None for i, _ in cells):
                out.append({**row, "name": label(row["name"], case), "case": case, "cells": cells})
    return out


def label(route: str, case: str) -> str:
    return route if case == "text" else f"{route} [{case}]"


def write_outputs(result: dict[str, Any], out: Path) -> None:
    (out / "smoke.json").write_text(json.dumps(result, indent=1))
    # In smoke.md's red cells and smoke.html's evidence a tool cell names its case beside its route.
    shown = [{**c, "row": label(c["row"], c.get("case", "text"))} for c in result["cells"]]
    ctx = {"r": result, "grid": grid(result), "cells": shown}
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
