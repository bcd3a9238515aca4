"""The one jinja2 environment every report renders with (templates in harness/report/templates)."""
from __future__ import annotations

import json

import jinja2

from harness.load.outcome import tally

env = jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"),
                         autoescape=jinja2.select_autoescape(["html", "html.j2"]), trim_blocks=True, lstrip_blocks=True)
env.filters["md"] = lambda s: str(s if s is not None else "").replace("|", "\\|").replace("\n", " ")
env.filters["pct"] = lambda x: f"{x:.1f}%"
env.filters["pretty"] = lambda obj: json.dumps(obj, indent=1, ensure_ascii=False)
env.filters["tally"] = tally   # a load run's counts: completed, errors, never finished
