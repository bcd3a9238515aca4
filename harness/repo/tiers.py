"""Coverage tiers of a module, stated once: zero 0%, very low under 20%, low under 50%, moderate
under 75%, good under 100%, complete 100%."""
from __future__ import annotations

# (upper bound, exclusive, in percent; tier). A module at 0% is "zero", at 100% "complete".
TIERS = ((20.0, "very low"), (50.0, "low"), (75.0, "moderate"), (100.0, "good"))
ZERO, COMPLETE = "zero", "complete"
NAMES = (ZERO, *(name for _, name in TIERS), COMPLETE)


def tier(statements: int, missed: int) -> str:
    """A module without statements (an empty __init__.py) is complete, as coverage.py reports it."""
    if missed == 0:
        return COMPLETE
    if missed >= statements:
        return ZERO
    pct = percent(statements, missed)
    return next(name for bound, name in TIERS if pct < bound)


def percent(statements: int, missed: int) -> float:
    return 100.0 if statements == 0 else 100.0 * (statements - missed) / statements


def thresholds() -> dict[str, str]:
    """For a report's legend."""
    out, low = {ZERO: "0%"}, 0.0
    for bound, name in TIERS:
        out[name] = f"{'>' if low == 0 else ''}{low:g}% to <{bound:g}%"
        low = bound
    out[COMPLETE] = "100%"
    return out
