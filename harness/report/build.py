"""From results JSON to the coverage-gap matrix, in Markdown and HTML (jinja2).

The shape follows what teams write by hand (shared/reference-reports/001): an executive summary,
a heatmap by section, the claim-by-claim mapping with evidence, critical gaps grouped by risk,
and the recommended waves of work.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from harness.catalog import id_key
from harness.report.env import env as _env
from harness.report.load_plot import svg_lines
from harness.smoke.report import grid

ORDER = ("PASS", "FAIL", "SAFE", "PARTIAL", "UNSUPPORTED", "MISSING", "ERROR", "NOT RUN")
VERIFIED = ("PASS", "FAIL", "SAFE")      # an automated check reached a verdict about the gateway
GAP = ("FAIL", "ERROR", "PARTIAL", "MISSING", "UNSUPPORTED", "SAFE")
RISK_TITLES = {"revenue": "Revenue risk", "reliability": "Reliability risk",
               "conformance": "Spec conformance risk", "security": "Security risk"}
WAVE_TITLES = {"P0": "Wave 1: P0", "P1": "Wave 2: P1", "P2": "Wave 3: P2", "P3": "Wave 4: P3"}



def _rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every catalog claim once: its verdict when it ran, NOT RUN when it was deselected."""
    ran = {r["id"]: r for r in results.get("claims", [])}
    rows = []
    for c in results.get("catalog") or list(ran.values()):
        r = ran.get(c["id"])
        if r is None:
            status = "MISSING" if c.get("check") is None else "NOT RUN"
            r = {**c, "status": status, "reason": "no automated check yet" if status == "MISSING" else "deselected",
                 "evidence": {}, "duration_s": 0}
        rows.append(r)
    return sorted(rows, key=lambda r: id_key(r["id"]))


def context(results: dict[str, Any]) -> dict[str, Any]:
    rows = _rows(results)
    total = len(rows)
    counts = Counter(r["status"] for r in rows)
    sections: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        sections[r["section"]].append(r)
    heat = []
    for name, items in sections.items():
        c = Counter(i["status"] for i in items)
        verified = sum(c[s] for s in VERIFIED)
        heat.append({"section": name, "lane": items[0].get("lane", ""), "total": len(items),
                     "counts": c, "verified_pct": 100 * verified / len(items),
                     "conforming_pct": 100 * c["PASS"] / verified if verified else 0.0})
    gaps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["status"] in GAP:
            gaps[r["risk"]].append(r)
    waves = {w: [r for r in rows if r["wave"] == w and r["status"] in GAP] for w in WAVE_TITLES}
    started = results.get("started_at")
    return {
        "target": results.get("target", {}), "version": results.get("harness_version", "?"),
        "generated": dt.datetime.fromtimestamp(results.get("finished_at") or 0, dt.timezone.utc)
        .strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": (results.get("finished_at") or 0) - (started or 0),
        "total": total, "counts": counts, "order": ORDER,
        "pct": {s: (100 * counts[s] / total if total else 0.0) for s in ORDER},
        "verified": sum(counts[s] for s in VERIFIED),
        "sections": sections, "heat": heat,
        "findings": [r for r in rows if r["status"] in ("FAIL", "ERROR")],
        "gaps": [(RISK_TITLES[k], gaps[k]) for k in RISK_TITLES if gaps.get(k)],
        "waves": [(WAVE_TITLES[w], waves[w]) for w in WAVE_TITLES if waves[w]],
        "lanes": sorted({r.get("lane", "") for r in rows}),
        "loads": [{**ld, "plot": svg_lines(ld.get("per_second", {}))} for ld in _loads(results)],
        "smoke": results.get("smoke"),
        "smoke_red": [c for c in (results.get("smoke") or {}).get("cells", []) + (results.get("smoke") or {}).get("catalog", [])
                      if c["status"] in ("FAIL", "ERROR")],
        "smoke_grid": grid(results["smoke"]) if results.get("smoke") and "cells" in results["smoke"] else [],
    }


def _loads(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The load lane's profiles; a results.json from before several profiles holds one dict."""
    loads = results.get("load") or []
    return [loads] if isinstance(loads, dict) else loads


def write_reports(results: dict[str, Any], out: Path) -> dict[str, int]:
    ctx = context(results)
    (out / "report.md").write_text(_env.get_template("report.md.j2").render(**ctx))
    (out / "report.html").write_text(_env.get_template("report.html.j2").render(**ctx))
    return {s: ctx["counts"][s] for s in ORDER}
