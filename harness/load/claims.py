"""The load lane's verdicts as claims of the coverage report: stream buffering (CM-21.1) and one
claim per gate of harness.yaml (CM-21.2 onwards, or the gate's own id)."""
from __future__ import annotations

from typing import Any

from harness.load.outcome import tally

SECTION, LANE = "Load and release gates", "Load"
BUFFERING_ID = "CM-21.1"
BUFFERING_CLAIM = ("Streamed tokens reach the client as the provider sends them (no buffering: TTFT not close to "
                   "the whole stream, chunks not bunched)")


def _claim(cid: str, test: str, text: str, status: str, reason: str, evidence: dict[str, Any],
           duration_s: float, wave: str = "P1") -> dict[str, Any]:
    return {"id": cid, "test": test, "claim": text, "risk": "reliability", "wave": wave, "check": "load.lane",
            "params": {}, "group": "load", "section": SECTION, "lane": LANE, "status": status, "reason": reason,
            "evidence": evidence, "duration_s": round(duration_s, 3)}


def records(result: dict[str, Any], duration_s: float) -> list[dict[str, Any]]:
    profile = result["profile"]["name"]
    gw = result["gateway"]
    summary = {"profile": profile, "requests": gw["counts"].get("requests", 0), "outcome": tally(gw["counts"]),
               "rps": gw["locust"]["rps"],
               "errors": {k: v for k, v in gw["counts"].items() if k.startswith("error:")},
               "details": f"load/{profile}/load.html", "generator_floor": result.get("floor")}
    out = []
    buf = result.get("buffering") or {"status": "UNSUPPORTED", "reason": "no run straight at the provider to compare with"}
    out.append(_claim(BUFFERING_ID, "test_streams_are_not_buffered", BUFFERING_CLAIM, buf["status"], f"{profile}: {buf['reason']}",
                      {**summary, **{k: v for k, v in buf.items() if k not in ("status", "reason")},
                       "ttft_gateway_ms": gw["table"].get("ttft"), "ttft_direct_ms": (result.get("direct") or {})
                       .get("table", {}).get("ttft")}, duration_s))
    for g in result["gates"]:
        out.append(_claim(g["id"], "test_load_gate", f"Release gate: {g['gate']} (harness.yaml gates)",
                          g["status"], f"{profile}: {g['reason']}", {**summary, "gate": g}, 0.0, wave="P0"))
    return out


def errors(cfg: Any, profile: str, why: str) -> list[dict[str, Any]]:
    """The load run broke (the generator, not the gateway): every load claim is an ERROR with why."""
    from harness.load.lane import gates
    empty = {"counts": {}, "table": {}, "locust": {}}
    out = [_claim(BUFFERING_ID, "test_streams_are_not_buffered", BUFFERING_CLAIM, "ERROR", f"{profile}: {why}", {}, 0.0)]
    for g in gates(cfg, empty, profile):
        out.append(_claim(g["id"], "test_load_gate", f"Release gate: {g['gate']} (harness.yaml gates)", "ERROR",
                          f"{profile}: {why}", {}, 0.0, wave="P0"))
    return out


_PRECEDENCE = ("FAIL", "ERROR", "PASS", "UNSUPPORTED")   # a failure anywhere fails the claim


def combine(per_profile: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The claims of several profiles as one claim per id: a gate without `profile:` (and stream
    buffering) is judged in every profile that measures it, and fails if it fails in any."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for records_ in per_profile:
        for r in records_:
            by_id.setdefault(r["id"], []).append(r)
    out = []
    for group in by_id.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        status = next(s for s in _PRECEDENCE if any(r["status"] == s for r in group))
        out.append({**group[0], "status": status, "reason": "; ".join(r["reason"] for r in group),
                    "evidence": {"profiles": [r["evidence"] for r in group]},
                    "duration_s": round(sum(r["duration_s"] for r in group), 3)})
    return out
