"""report.md and report.html from the view (harness/report/view.py), laid out by jinja2 templates.

The shape follows what teams write by hand (shared/reference-reports/): the decision first, the
themes, each finding once grouped by cause with its consequence, then the lists by kind (SAFE,
UNSUPPORTED, not judged, waived), the heatmap, the measured tables, every claim with its evidence."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report.env import env


def write(view: dict[str, Any], out: Path) -> None:
    (out / "report.md").write_text(env.get_template("report.md.j2").render(**view))
    (out / "report.html").write_text(env.get_template("report.html.j2").render(**view))
