"""The one jinja2 environment every report renders with (templates in harness/report/templates)."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Optional

import jinja2

from harness.load.outcome import tally


def short(text: Any, n: int = 200) -> str:
    """One line of at most n characters: long reasons (53 attempts...) stay in the evidence."""
    t = " ".join(str(text if text is not None else "").split())
    return t if len(t) <= n else t[: n - 1].rstrip() + "…"


def when(ts: Optional[float]) -> str:
    return dt.datetime.fromtimestamp(ts or 0, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


env = jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"),
                         autoescape=jinja2.select_autoescape(["html", "html.j2"]), trim_blocks=True, lstrip_blocks=True)
env.filters["md"] = lambda s: str(s if s is not None else "").replace("|", "\\|").replace("\n", " ")
env.filters["pct"] = lambda x: f"{x:.1f}%"
env.filters["pretty"] = lambda obj: json.dumps(obj, indent=1, ensure_ascii=False, default=str)
env.filters["tally"] = tally   # a load run's counts: completed, errors, never finished
env.filters["short"] = short
env.filters["when"] = when
env.filters["css"] = lambda status: str(status).replace(" ", "")   # NOT RUN -> NOTRUN, a class name
