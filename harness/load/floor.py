"""The measured floor of a load run: what the generator and the wire add to every figure, measured
in the same run, so a gate is judged only where the figure can carry it.

Per percentile the floor is the largest of
- the generator's event-loop lag (`gen_lag`: how late a greenlet wakes from a 10 ms sleep),
- its send lag (`send_lag`: how late a user sent against when it meant to),
- the direct run's deviation from the script (the same profile straight at the mock provider,
  whose times are known: what is above them is the generator, the wire and the mock),
and the generator processes' CPU is reported beside it. A gate whose bound is not at least
1/share of the floor at its percentile is ERROR "not judged: the generator was saturated", with
the figures: a PASS or FAIL there would be the generator's, not the gateway's.
"""
from __future__ import annotations

from typing import Any, Optional

DEFAULT_SHARE = 0.1   # the floor may take at most this share of a gate's bound

# The direct run's metric a gate's metric is compared with: the fan is a set of streams (its e2e),
# intended-time figures rest on the same requests.
_DIRECT_OF = {"ttft_intended": "ttft", "e2e_intended": "e2e", "fan": "e2e"}


def script_times(tokens: int, token_delay_ms: float, first_token_delay_ms: float = 0.0,
                 headers_delay_ms: float = 0.0) -> dict[str, float]:
    """What a perfect generator measures straight at the mock provider scripted so (ms)."""
    ttft = headers_delay_ms + first_token_delay_ms
    e2e = ttft + token_delay_ms * max(0, tokens - 1)
    return {"ttft": ttft, "e2e": e2e, "itl": token_delay_ms, "tpot": token_delay_ms, "tpot_chunks": token_delay_ms,
            "latency": e2e}


def measure(gw: dict[str, Any], direct: Optional[dict[str, Any]], script: dict[str, float]) -> dict[str, Any]:
    """The floor's figures of a run (stored in the result; `judge` reads them)."""
    counts = gw.get("counts") or {}
    wall, cpu = counts.get("gen_wall_ms", 0), counts.get("gen_cpu_ms", 0)
    deviation: dict[str, dict[str, float]] = {}
    for metric, row in ((direct or {}).get("table") or {}).items():
        base = script.get(metric.split("@")[0])
        if base is not None:
            deviation[metric] = {k: round(max(0.0, v - base), 3) for k, v in row.items()
                                 if k.startswith("p") or k == "max"}
    own = gw.get("generator") or {}
    return {"gen_lag": own.get("gen_lag"), "send_lag": own.get("send_lag"),
            "cpu_share": round(cpu / wall, 3) if wall else None, "direct_deviation": deviation, "script": script}


def at(floor: dict[str, Any], metric: str, percentile: float) -> tuple[float, dict[str, float]]:
    """The floor at a gate's percentile (ms) and what it is made of."""
    key = f"p{percentile:g}"
    parts: dict[str, float] = {}
    for name in ("gen_lag", "send_lag"):
        row = floor.get(name) or {}
        if key in row:
            parts[name] = row[key]
    dev = floor.get("direct_deviation", {}).get(_DIRECT_OF.get(metric, metric), {})
    if key in dev:
        parts["direct_deviation"] = dev[key]
    return (max(parts.values()) if parts else 0.0), parts


def judge(gate: dict[str, Any], metric: str, percentile: Optional[float], bound_ms: Optional[float],
          floor: Optional[dict[str, Any]], share: float = DEFAULT_SHARE) -> dict[str, Any]:
    """The gate as it is, or ERROR "not judged" when the floor is above `share` of its bound.
    An error-rate gate has no bound in time: it is judged (an error is an error)."""
    if floor is None or percentile is None or not bound_ms:
        return gate
    value, parts = at(floor, metric, percentile)
    gate = {**gate, "floor_ms": round(value, 3)}
    if value <= share * bound_ms:
        return gate
    what = ", ".join(f"{_LABELS[k]} {v:.1f} ms" for k, v in parts.items())
    cpu = floor.get("cpu_share")
    cpu_text = f"; generator CPU {cpu:.0%} of a core per process" if cpu is not None else ""
    return {**gate, "status": "ERROR",
            "reason": (f"not judged: the generator was saturated: its floor at p{percentile:g} was {value:.1f} ms "
                       f"({what}{cpu_text}), above {share:.0%} of the bound {bound_ms:g} ms; "
                       f"{gate.get('reason', '')}").rstrip("; ")}


_LABELS = {"gen_lag": "event-loop lag", "send_lag": "send lag", "direct_deviation": "direct run off the script by"}
