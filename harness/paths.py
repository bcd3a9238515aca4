"""Where the data catalogs live (claims, chaos scenarios, policies, load profiles, smoke matrices).

A checkout (or an editable install) keeps them in matrices/ beside the package; an installed
harness, or a team keeping its own catalogs, points HARNESS_MATRICES at a copy."""
from __future__ import annotations

import os
from pathlib import Path

MATRICES = Path(os.environ.get("HARNESS_MATRICES") or Path(__file__).resolve().parent.parent / "matrices")
