"""The one selection rule for every lane: --only ID (an id or an id prefix, by dotted parts),
--lane NAME, -k TEXT (a substring of the id, test name or claim). Each given option must match;
repeated --only or --lane options are alternatives."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Selection:
    only: tuple[str, ...] = ()
    lanes: tuple[str, ...] = ()
    keyword: str = ""

    @property
    def everything(self) -> bool:
        return not (self.only or self.lanes or self.keyword)

    def wants(self, rid: str, lane: str, test: str = "", claim: str = "") -> bool:
        if self.lanes and lane.lower() not in {x.lower() for x in self.lanes}:
            return False
        if self.only and not any(_id_matches(rid, o) for o in self.only):
            return False
        if self.keyword and self.keyword.lower() not in f"{rid} {test} {claim}".lower():
            return False
        return True

    def wants_any(self, items: Iterable[tuple[str, str, str, str]]) -> bool:
        return any(self.wants(*i) for i in items)

    def describe(self) -> str:
        parts = [f"--only {o}" for o in self.only] + [f"--lane {x}" for x in self.lanes]
        parts += [f"-k {self.keyword}"] if self.keyword else []
        return " ".join(parts) or "everything"


def _id_matches(rid: str, prefix: str) -> bool:
    """CM-2 selects CM-2 and CM-2.x, never CM-21; SMOKE every SMOKE-... cell; team every team:... claim."""
    p = prefix.rstrip(".")
    return rid == p or any(rid.startswith(p + sep) for sep in ".-/:")
