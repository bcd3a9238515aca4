"""Where the data catalogs live (claims, chaos scenarios, policies, load profiles, smoke matrices).

They ship inside the package (harness/matrices: in a checkout a link to the repository's
matrices/, in a wheel a copy), so an installed harness runs the embedded default as it is; a team
keeping its own catalogs points HARNESS_MATRICES (or --matrices) at its copy."""
from __future__ import annotations

import os
from pathlib import Path

MATRICES = Path(os.environ.get("HARNESS_MATRICES") or Path(__file__).resolve().parent / "matrices")
