"""The provider smoke matrix behind a gateway of its own (a generated config for the matrix's
routes): one record per cell (route x client protocol x streaming) and per catalog cross-check,
the grid an artifact."""
from __future__ import annotations

from typing import Any

from harness.lanes import LaneEnv
from harness.results.record import Record, Status
from harness.results.select import Selection
from harness.results.stream import StreamWriter

LANE = "Smoke"
MODE = {False: "plain", True: "stream"}
STATUS = {"NOT OFFERED": Status.UNSUPPORTED}   # declared not offered: nothing promised


def cell_id(row: str, protocol: str, stream: bool, case: str = "text") -> str:
    """SMOKE-<route>/<protocol>/<mode>, with /<case> for a cell that is not the text one (/tools)."""
    from harness.smoke.cases import CASES
    return f"SMOKE-{row}/{protocol}/{MODE[stream]}{CASES[case].suffix}"


def cell_record(matrix: str, c: dict[str, Any], catalog: bool = False) -> Record:
    from harness.smoke.cases import CASES
    section = f"Smoke matrix {matrix}" + (": catalog" if catalog else "")
    if catalog:
        rid, test, claim = f"SMOKE-{c['id']}", c["id"], c["claim"]
    else:
        case = CASES[c.get("case", "text")]
        rid = cell_id(c["row"], c["protocol"], c["stream"], case.name)
        test = f"{c['protocol']}[{MODE[c['stream']]}{case.suffix}]"
        claim = case.claim.format(row=c["row"], mode=MODE[c["stream"]], protocol=c["protocol"])
    status = STATUS.get(c["status"], c["status"])
    reason = c["reason"] if c["status"] not in STATUS else f"{c['status'].lower()}: {c['reason']}"
    return Record(rid, LANE, section, status, reason, claim=claim, test=test, risk="reliability", wave="P1",
                  check="smoke.cell" if not catalog else "smoke.catalog", group=c.get("row"),
                  evidence=c.get("evidence") or {})


class SmokeLane:
    name = "smoke"
    needs_world = False    # a world of its own: the matrix's providers behind a generated gateway config

    def plan(self, env: LaneEnv, selection: Selection) -> list[Record]:
        from harness.smoke.matrix import load_matrix
        if not env.cfg.smoke or env.extra.get("no_smoke"):
            return []
        matrix = load_matrix(env.cfg.smoke.matrix)   # a bad matrix stops the run before anything starts
        planned = [cell_record(matrix.name, {"row": r.name, "protocol": p, "stream": s, "case": case,
                                             "status": "NOT RUN", "reason": ""}) for r, p, s, case in matrix.cells()]
        planned += [cell_record(matrix.name, {"id": cid, "claim": cid, "status": "NOT RUN", "reason": ""}, catalog=True)
                    for cid in ("catalog.listed", "catalog.unique", "catalog.namespaces", "catalog.fallbacks_served")]
        if not selection.wants_any((r.id, r.lane, r.test, r.claim) for r in planned):
            return []
        env.extra["matrix"] = matrix
        return planned   # the matrix runs whole: its gateway config is generated for every route

    def run(self, env: LaneEnv, planned: list[Record], stream: StreamWriter) -> None:
        from harness.smoke import lane as smoke
        from harness.smoke.report import write_outputs
        matrix = env.extra["matrix"]
        where = env.out / "smoke"
        where.mkdir(parents=True, exist_ok=True)
        result, _ = smoke.measure(env.cfg, env.cfg_path, matrix, where, progress=env.debug)
        write_outputs(result, where)
        for c in result["cells"]:
            stream.record(cell_record(matrix.name, c))
        for c in result["catalog"]:
            stream.record(cell_record(matrix.name, c, catalog=True))
        files = [str((where / f).relative_to(env.out)) for f in ("smoke.html", "smoke.md", "smoke.json")]
        stream.artifact(LANE, matrix.name, {**{k: v for k, v in result.items() if k != "cells" and k != "catalog"},
                                           "cells": [{k: v for k, v in c.items() if k != "evidence"} for c in result["cells"]],
                                           "catalog": [{k: v for k, v in c.items() if k != "evidence"} for c in result["catalog"]],
                                           "files": files})
