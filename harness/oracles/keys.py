"""Judging a client key's life through the gateway's admin API (CM-28): when a change to the key
took effect, going by the requests sent with it, and whether the spend it reports is what the
provider's usage costs. Pure: the check (checks/keys.py) sends the requests and reads the journal."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class Probe:
    """One request sent with the key: when (seconds after the change: the admin API's answer, or the
    key's expiry), what came back, and whether a provider got it (the journal, by its tag)."""
    t_s: float
    status: Optional[int]
    reached_provider: bool
    error: Optional[str] = None

    def summary(self) -> dict[str, Any]:
        return {"t_s": round(self.t_s, 3), "status": self.status, "reached_provider": self.reached_provider,
                **({"error": self.error} if self.error else {})}


def _answer(p: Probe) -> str:
    return f"HTTP {p.status}" if p.status is not None else f"no answer ({p.error})"


def first_accepted(probes: list[Probe]) -> Optional[Probe]:
    return next((p for p in probes if p.status is not None and 200 <= p.status < 300), None)


def acceptance(probes: list[Probe], bound_s: float, what: str) -> list[str]:
    """A new key is accepted (2xx, and its request reached a provider) within `bound_s` of `what`."""
    ok = first_accepted(probes)
    if ok is None:
        last = probes[-1] if probes else None
        return [f"the key was never accepted: {_answer(last)} {last.t_s:.2f}s after {what}" if last
                else "the key was never tried"]
    out = []
    if ok.t_s > bound_s:
        out.append(f"the key was accepted only {ok.t_s:.2f}s after {what}, past the promised {bound_s:g}s")
    if not ok.reached_provider:
        out.append("the request it was accepted for never reached a provider")
    return out


def refusal(probes: list[Probe], bound_s: float, refused: set[int] | range, what: str) -> tuple[list[str], Optional[float]]:
    """After `what`, the key is refused (a status in `refused`) within `bound_s`, stays refused, and no
    refused request reaches a provider. Requests accepted before the bound ran out are allowed (the
    change is still taking effect). Returns the violations and when the first refusal came."""
    first = next((i for i, p in enumerate(probes) if p.status in refused), None)
    out: list[str] = []
    if first is None:
        if not probes:
            return ["no request was sent with the key"], None
        last = probes[-1]
        out.append(f"still not refused {last.t_s:.2f}s after {what} (promised within {bound_s:g}s): {_answer(last)}")
    else:
        t = probes[first].t_s
        if t > bound_s:
            out.append(f"refused only {t:.2f}s after {what}, past the promised {bound_s:g}s")
        later = [p for p in probes[first + 1:] if p.status not in refused]
        if later:
            out.append(f"refused {t:.2f}s after {what}, then not refused again {later[0].t_s:.2f}s after it: "
                       f"{_answer(later[0])}")
    leaked = [p for p in probes if p.status in refused and p.reached_provider]
    if leaked:
        out.append(f"{len(leaked)} refused request(s) still reached a provider (the first {leaked[0].t_s:.2f}s "
                   f"after {what})")
    return out, (probes[first].t_s if first is not None else None)


def tokens(usage: Any, field: str) -> Optional[int]:
    """A token count of a usage object: a plain, sane integer, else None."""
    v = usage.get(field) if isinstance(usage, dict) else None
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**53 else None


def cost(usages: list[Any], input_price: float, output_price: float) -> float:
    """What these provider answers cost: prompt tokens times the input price plus completion tokens
    times the output price (OpenAI's usage fields, as the journal keeps them; the check makes sure
    both are there, see `tokens`)."""
    return float(sum((tokens(u, "prompt_tokens") or 0) * input_price + (tokens(u, "completion_tokens") or 0) * output_price
                     for u in usages))


def spend_matches(reported: Any, expected: float, tolerance: float) -> list[str]:
    """The reported spend equals the expected one within `tolerance` (relative)."""
    try:
        value = float(reported) if isinstance(reported, (int, float)) and not isinstance(reported, bool) else None
    except OverflowError:
        value = None
    if value is None or not math.isfinite(value):
        return [f"the reported spend is {str(reported)[:40]!r}, not a number"]
    # Relative to the expected spend, not math.isclose's larger of the two: that let a spend reported
    # up to tolerance/(1 - tolerance) too high pass (1.109 against 1.0 at 10%).
    if abs(value - expected) <= tolerance * abs(expected) + 1e-12:
        return []
    off = (value - expected) / expected if expected else math.inf
    return [f"the reported spend is {value:.10g}, usage times price is {expected:.10g} "
            f"({off:+.1%}; tolerance {tolerance:.1%})"]
