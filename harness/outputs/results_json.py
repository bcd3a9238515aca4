"""results.json: the whole run in one document (provenance, every record, the lanes' artifacts,
the decision and what changed), for tools that do not want to read a stream."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write(view: dict[str, Any], artifacts: list[dict[str, Any]], path: Path) -> None:
    meta = {k: v for k, v in view["meta"].items() if k != "catalog"}
    doc = {
        **meta, "partial": view["partial"], "finished_at": view["end"].get("finished_at"),
        "decision": view["decision"],
        "counts": {str(s): view["counts"][s] for s in view["order"]}, "total": view["total"],
        "claims": [r.to_json() for r in view["rows"]],
        "causes": [{"title": g["title"], "ids": [r.id for r in g["records"]], "blocking": g["blocking"],
                    "log_lines": [f"{n}: {line}" for n, line in g["log_lines"]]} for g in view["groups"]],
        "changes": view["history"],
        "load": [a["data"] for a in artifacts if a["lane"] == "Load"],
        "smoke": next((a["data"] for a in artifacts if a["lane"] == "Smoke"), None),
        "catalog": view["meta"].get("catalog", []),
    }
    path.write_text(json.dumps(doc, indent=1, default=str))
