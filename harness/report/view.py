"""What every report shows, computed once from a results stream: counts that add up, the release
decision, findings grouped by cause, the lists by kind, the heatmap, the measured headline, the
run's provenance and what changed since the previous run. Templates only lay it out."""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Optional

from harness.report import causes
from harness.report.load_plot import svg_lines
from harness.results import waivers as waiver_rules
from harness.results.record import BROKEN, ORDER, VERIFIED, Record, Status, natural_key
from harness.results.stream import Run
from harness.smoke.report import grid

RISK_TITLES = {"security": "Security risk", "revenue": "Revenue risk", "reliability": "Reliability risk",
               "conformance": "Spec conformance risk"}
WAVE_TITLES = {"P0": "Wave 1: P0", "P1": "Wave 2: P1", "P2": "Wave 3: P2", "P3": "Wave 4: P3"}
CONSEQUENCE = {   # what a broken promise of each risk means to the people behind the gateway
    "security": "a caller can get past, or learn about, what the gateway should protect",
    "revenue": "usage, cost or limits are accounted wrong",
    "reliability": "clients see failures or delays the gateway promised to absorb",
    "conformance": "clients written for the API can break on what the gateway returns",
}
MEANING = {
    Status.PASS: "verified and conforming",
    Status.FAIL: "verified and deviating: fix the gateway (or its config)",
    Status.SAFE: "promise not kept, but failed cleanly within its bound",
    Status.PARTIAL: "only part of the promise could be verified",
    Status.UNSUPPORTED: "not promised or not configured: declare it in promises: to test it",
    Status.ERROR: "not judged: no verdict could be reached (the reason says why)",
    Status.MISSING: "no automated check yet",
    Status.NOT_RUN: "deselected, or not reached before the run stopped",
}


def rows_of(run: Run) -> list[Record]:
    """Every catalog entry once: its record when judged, NOT RUN (or MISSING) otherwise."""
    judged = run.by_id()
    planned = {i for ids in (run.meta.get("planned") or {}).values() for i in ids}
    rows = dict(judged)
    for c in run.meta.get("catalog") or []:
        if c["id"] in rows:
            continue
        if c.get("check") is None and c.get("lane") != "Load" and c.get("lane") != "Smoke":
            status, reason = Status.MISSING, "no automated check yet"
        elif c["id"] in planned:
            status, reason = Status.NOT_RUN, "not reached: the run stopped before it"
        else:
            status, reason = Status.NOT_RUN, "deselected"
        rows[c["id"]] = Record.from_json({**c, "status": status, "reason": reason})
    return sorted(rows.values(), key=lambda r: natural_key(r.id))


def _blocking(r: Record, release: dict[str, Any]) -> bool:
    waves = release.get("blocking_waves") or ["P0", "P1"]
    return r.status in BROKEN and not r.waived and (r.wave in waves or r.lane == "Load")


def _fmt_time(ts: Optional[float]) -> str:
    return dt.datetime.fromtimestamp(ts or 0, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def headline(loads: list[dict[str, Any]]) -> list[str]:
    """The biggest measured facts: the gateway's TTFT (and e2e) against the provider's own."""
    out = []
    for ld in loads:
        gw, direct = ld["runs"].get("gateway", {}).get("table", {}), ld["runs"].get("direct", {}).get("table", {})
        for metric, label in (("ttft", "time to first token"), ("e2e", "whole-request time"), ("latency", "latency")):
            g, d = gw.get(metric), direct.get(metric)
            if g and d and g.get("count") and d.get("count") and d.get("p50"):
                out.append(f"Load profile {ld['profile']['name']}: through the gateway p50 {label} was "
                           f"{g['p50']:.1f} ms against {d['p50']:.1f} ms straight at the provider "
                           f"(x{g['p50'] / d['p50']:.0f}); p99 {g['p99']:.1f} ms against {d['p99']:.1f} ms.")
                break
    return out


def runtime_verdicts(rows: list[Record]) -> list[dict[str, Any]]:
    """The team's claims beside what the harness saw at runtime: a team claim that names a harness
    check (and params) is judged black-box by every harness claim running that check with those
    params; "tested in the repo" and "holds at runtime" side by side, and whether they disagree."""
    harness_rows = [r for r in rows if r.lane != "Repository"]
    out = []
    for r in rows:
        if r.lane != "Repository" or r.id == "team:suite":
            continue
        check, params = r.evidence.get("harness_check"), r.evidence.get("harness_params") or {}
        runtime = [h for h in harness_rows if check and h.check == check
                   and all(h.params.get(k) == v for k, v in params.items())] if check else []
        judged = [h for h in runtime if h.status in VERIFIED]
        holds = (None if not judged else all(h.status == Status.PASS for h in judged))
        tested = r.evidence.get("coverage", str(r.status))
        out.append({"record": r, "coverage": tested, "check": check, "runtime": runtime, "holds": holds,
                    "disagree": holds is not None and (holds != (tested == "COVERED"))})
    return out


def build(run: Run, log_path: Optional[Path] = None, history: Optional[dict[str, Any]] = None,
          trend: Optional[dict[str, list[str]]] = None) -> dict[str, Any]:
    meta = run.meta
    rows = rows_of(run)
    started = meta.get("started_at") or 0
    waiver_rules.apply(rows, meta.get("waivers") or [], dt.datetime.fromtimestamp(started, dt.timezone.utc).date())
    counts = Counter(r.status for r in rows)
    total = len(rows)
    release = meta.get("release") or {}
    by_status: dict[Status, list[Record]] = {s: [r for r in rows if r.status == s and not r.waived] for s in ORDER}
    waived = [r for r in rows if r.waived]
    expired = [r for r in rows if r.waiver and r.waiver.get("expired")]
    findings = [r for r in rows if r.status in BROKEN and not r.waived]
    groups = causes.group(findings, causes.GatewayLog(log_path))
    for g in groups:
        g["blocking"] = any(_blocking(r, release) for r in g["records"])
        g["consequence"] = next((r.impact for r in g["records"] if r.impact), None) or CONSEQUENCE.get(
            g["records"][0].risk, "")
        g["anchor"] = "cause-" + g["records"][0].id
    groups.sort(key=lambda g: (not g["blocking"], min(r.wave for r in g["records"]), natural_key(g["records"][0].id)))
    blocking = [r for r in findings if _blocking(r, release)]
    not_judged_blocking = [r for r in by_status[Status.ERROR] if r.wave in (release.get("blocking_waves") or ["P0", "P1"])]
    partial = run.partial
    infra = (run.end or {}).get("infra_error")
    if blocking:
        verdict = "BLOCKED"
        why = (f"{len(blocking)} blocking finding{'s' if len(blocking) != 1 else ''} in "
               f"{sum(g['blocking'] for g in groups)} cause{'s' if sum(g['blocking'] for g in groups) != 1 else ''}")
    elif not_judged_blocking or partial or infra:
        verdict = "NOT CLEARED"
        why = ("the world could not be started, so not everything was judged" if infra
               else f"no blocking finding, but {len(not_judged_blocking)} blocking claim(s) were not judged"
               if not_judged_blocking else "no blocking finding so far, but the run did not finish")
    else:
        verdict = "CLEARED"
        why = "no blocking finding" + (f"; {len(findings)} non-blocking" if findings else "")
    sections: dict[str, list[Record]] = defaultdict(list)
    for r in rows:
        sections[r.section].append(r)
    heat = []
    for name, items in sections.items():
        c = Counter(i.status for i in items)
        verified = sum(c[s] for s in VERIFIED)
        heat.append({"section": name, "lane": items[0].lane, "total": len(items), "counts": c,
                     "verified_pct": 100 * verified / len(items), "conforming_pct": 100 * c[Status.PASS] / verified if verified else 0.0})
    themes = []
    by_section: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in groups:
        by_section[g["section"]].append(g)
    for section, gs in by_section.items():
        n = sum(len(g["records"]) for g in gs)
        themes.append({"section": section, "findings": n, "causes": len(gs), "blocking": any(g["blocking"] for g in gs),
                       "consequence": gs[0]["consequence"], "first": gs[0]})
    loads = [{**a["data"], "plot": svg_lines(a["data"].get("per_second", {}))} for a in run.artifacts_of("Load")]
    smoke = next((a["data"] for a in run.artifacts_of("Smoke")), None)
    smoke_grid = grid(smoke) if smoke and "cells" in smoke else []
    gaps: dict[str, list[Record]] = defaultdict(list)
    for r in findings + by_status[Status.ERROR] + by_status[Status.PARTIAL]:
        gaps[r.risk].append(r)
    waves = {w: [r for r in findings + by_status[Status.ERROR] if r.wave == w] for w in WAVE_TITLES}
    failing = findings + by_status[Status.ERROR]   # PARTIAL is listed, but is no finding
    return {
        "meta": meta, "target": meta.get("target", {}), "gateway": meta.get("gateway", {}),
        "version": meta.get("harness_version", "?"), "command": meta.get("command", ""),
        "generated": _fmt_time((run.end or {}).get("finished_at") or started),
        "started": _fmt_time(started),
        "duration_s": ((run.end or {}).get("finished_at") or started) - started,
        "partial": partial, "end": run.end or {},
        "rows": rows, "total": total, "counts": counts, "order": ORDER, "meaning": MEANING,
        "pct": {s: (100 * counts[s] / total if total else 0.0) for s in ORDER},
        "verified": sum(counts[s] for s in VERIFIED),
        "decision": {"verdict": verdict, "why": why, "blocking_waves": release.get("blocking_waves") or ["P0", "P1"]},
        "themes": themes, "headline": headline(loads), "groups": groups, "findings": findings,
        "blocking": blocking, "failing": failing,
        "fails": by_status[Status.FAIL], "safes": by_status[Status.SAFE], "partials": by_status[Status.PARTIAL],
        "unsupported": by_status[Status.UNSUPPORTED], "errors": by_status[Status.ERROR],
        "missing": by_status[Status.MISSING], "not_run": by_status[Status.NOT_RUN],
        "waived": waived, "expired": expired,
        "sections": sections, "heat": heat, "lanes": sorted({r.lane for r in rows}),
        "gaps": [(RISK_TITLES[k], gaps[k]) for k in RISK_TITLES if gaps.get(k)],
        "waves": [(WAVE_TITLES[w], waves[w]) for w in WAVE_TITLES if waves[w]],
        "loads": loads, "smoke": smoke, "smoke_grid": smoke_grid,
        "repo": {a["name"]: a["data"] for a in run.artifacts_of("Repository")}, "repo_claims": runtime_verdicts(rows),
        "gateway_coverage": next((a["data"] for a in run.artifacts_of("Gateway") if a["name"] == "coverage"), None), "history": history, "trend": trend or {},
        "log_path": str(log_path) if log_path else None,
    }
