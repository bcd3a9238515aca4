"""Claims that share gateway state (`group:`) reach one xdist worker under `--dist loadgroup`: the
installed xdist reads the group from the collected nodeid, so that is what is checked here."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from xdist.scheduler.loadgroup import LoadGroupScheduling

from harness import catalog

ROOT = Path(__file__).resolve().parent.parent


def _collected_nodeids() -> list[str]:
    """The claim items exactly as the claims lane collects them (same ini, rootdir and plugin)."""
    dirs = [str(d) for d in catalog.claim_dirs(catalog.MATRICES)]
    r = subprocess.run([sys.executable, "-m", "pytest", *dirs, "-c", str(ROOT / "harness" / "claims.ini"),
                        "--rootdir", str(catalog.MATRICES), "-p", "harness.pytest_plugin", "-p", "no:cacheprovider",
                        "--collect-only", "-q"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return [line for line in r.stdout.splitlines() if "::" in line]


def _scope(nodeid: str) -> str:
    return LoadGroupScheduling._split_scope(None, nodeid)   # uses nothing of the instance


def test_every_claim_of_a_group_lands_in_that_groups_scope_and_the_rest_stand_alone():
    claims = catalog.load_all(catalog.MATRICES)
    groups = {c.id: c.group for c in claims}
    nodeids = _collected_nodeids()
    assert len(nodeids) == len(claims)
    grouped = [n for n in nodeids if groups[n[n.index("[") + 1:n.index("]")]]]
    assert grouped, "the catalog has grouped claims (the chaos scenarios)"
    for n in nodeids:
        group = groups[n[n.index("[") + 1:n.index("]")]]
        assert _scope(n) == (group or n), n


# Roles whose claims tell their own traffic apart (by prompt tag) and keep no state an alias request
# could move; every other role, a new one included, must be kept from the alias claims.
TAGGED_ROLES = {"failover", "failover_refused", "retry", "timeout", "cache", "cache_other", "no_fallback"}


def test_the_alias_claims_never_spend_a_request_on_a_model_another_claim_keeps_state_on():
    """The alias claims (CM-17.x) send to any plain model; not to one whose counters, windows, slots
    or breaker another claim reads while they run beside it."""
    from types import SimpleNamespace

    from harness.checks.aliases import _servable
    from harness.config import Roles, load
    cfg, _ = load(None)
    stateful = set()
    for name in set(Roles.model_fields) - TAGGED_ROLES:
        value = getattr(cfg.roles, name)
        assert value, f"roles.{name}: the embedded target names no model, so this test cannot check it"
        stateful |= set(value) if isinstance(value, list) else {value}
    servable = _servable(SimpleNamespace(cfg=cfg))
    assert servable and not stateful & set(servable), stateful & set(servable)
