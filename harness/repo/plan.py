"""A team's own test plan as claims: a Markdown table (or several, under section headings) or a CSV
file with an id column and a test-name column, and optionally section, claim, risk, wave, lane,
module (the source file the claim is about), check and params (a harness check that also judges
the claim black-box). Columns are found by their header names, case-insensitively (HEADERS).

Ids are put in the team's namespace (`team:` unless configured), so `X-6.5.1` becomes
`team:X-6.5.1` and never collides with the harness's own CM-... ids."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import yaml

from harness import yaml_strict
from harness.config import ConfigError
from harness.repo.lanes import LANES, lane_of_words

DEFAULT_NAMESPACE = "team:"

# field -> header names (normalised: lower case, words separated by one space). First match wins,
# in this order, so "test id" is the test column and "cm id" the id column.
HEADERS: dict[str, tuple[str, ...]] = {
    "test": ("test", "test name", "test function", "test id", "test case", "tests"),
    "id": ("id", "cm id", "claim id", "req id", "requirement id", "ref"),
    "section": ("section", "area", "group"),
    "claim": ("claim", "description", "promise", "requirement", "behaviour", "behavior"),
    "risk": ("risk",),
    "wave": ("wave", "priority"),
    "lane": ("lane",),
    "module": ("module", "source", "source file", "code"),
    "check": ("check", "harness check"),
    "params": ("params", "parameters"),
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")


@dataclass
class Claim:
    id: str                  # namespaced: team
    local_id: str            # as the plan writes it
    test: str = ""           # the test name the plan expects
    claim: str = ""
    section: str = ""
    risk: str = "conformance"
    wave: str = "P2"
    lane: Optional[str] = None
    module: Optional[str] = None      # the source file the claim is about (gw/cache.py)
    check: Optional[str] = None       # a harness check judging it black-box too
    params: dict[str, Any] = field(default_factory=dict)
    where: str = ""                   # plan.md:12, for messages

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def import_plan(path: Path, namespace: str = DEFAULT_NAMESPACE,
                known_checks: Optional[set[str]] = None) -> list[Claim]:
    """The claims of a plan file (.md/.markdown: Markdown tables; .csv/.tsv: a table with a header).
    `known_checks`, when given, are the harness's check names a plan's check column may use."""
    path = Path(path)
    if not namespace or namespace.startswith("CM-"):
        raise ConfigError(f"{path}: namespace {namespace!r}: give a prefix of the team's own (team:, acme/), "
                          "so its ids never collide with the harness's CM- ids")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such plan file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if path.suffix.lower() in (".csv", ".tsv"):
        tables = [_csv_table(path, text)]
    else:
        tables = list(_markdown_tables(path, text))
    claims: list[Claim] = []
    seen: dict[str, str] = {}
    for table in tables:
        for claim in _claims(path, table, namespace, known_checks):
            if claim.id in seen:
                raise ConfigError(f"{claim.where}: id: {claim.local_id} already on {seen[claim.id]}")
            seen[claim.id] = claim.where
            claims.append(claim)
    if not claims:
        raise ConfigError(f"{path}: no claims: no table with an id column and a test column")
    return claims


def qualify(raw: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """A claim id in the namespace (an id already in it is left as is)."""
    return raw if raw.startswith(namespace) else f"{namespace}{raw}"


@dataclass
class _Table:
    header: list[str]
    header_line: int
    rows: list[tuple[int, list[str]]]        # (line, cells)
    section: str = ""


def _norm(header: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", header.lower()).split())


def _columns(path: Path, table: _Table) -> dict[str, int]:
    cols: dict[str, int] = {}
    for i, raw in enumerate(table.header):
        h = _norm(raw)
        for name, names in HEADERS.items():
            if h in names:
                if name in cols:
                    raise ConfigError(f"{path}:{table.header_line}: columns {table.header[cols[name]]!r} and "
                                      f"{raw!r} both read as the {name} column")
                cols[name] = i
                break
    return cols


def _claims(path: Path, table: _Table, namespace: str, known_checks: Optional[set[str]]) -> Iterator[Claim]:
    cols = _columns(path, table)
    if "id" not in cols:
        return                                   # a table of something else (a summary, a heatmap)
    if "test" not in cols:
        raise ConfigError(f"{path}:{table.header_line}: no test column (headers: {', '.join(table.header)}; "
                          f"one of {', '.join(HEADERS['test'])})")
    for line, cells in table.rows:
        where = f"{path}:{line}"
        if len(cells) != len(table.header):
            raise ConfigError(f"{where}: {len(cells)} cells, the header has {len(table.header)}")
        get = {name: cells[i].strip() for name, i in cols.items()}
        raw = get["id"]
        if not raw:
            raise ConfigError(f"{where}: id: empty")
        if not _ID.match(raw):
            raise ConfigError(f"{where}: id: {raw!r} is not an id (letters, digits and . _ - : / only)")
        yield Claim(id=qualify(raw, namespace), local_id=raw, test=get["test"], claim=get.get("claim", ""),
                    section=get.get("section") or table.section or path.stem,
                    risk=(get.get("risk") or "conformance").lower(), wave=_wave(get.get("wave", "")),
                    lane=_lane(where, get.get("lane", "")), module=get.get("module") or None,
                    check=_check(where, get.get("check", ""), known_checks),
                    params=_params(where, get.get("params", "")), where=where)


def _wave(raw: str) -> str:
    return raw.upper() if re.fullmatch(r"[pP]\d", raw) else (raw or "P2")


def _lane(where: str, raw: str) -> Optional[str]:
    if not raw:
        return None
    lane = lane_of_words([raw])
    if lane is None:
        raise ConfigError(f"{where}: lane: {raw!r} is none of {', '.join(LANES)}")
    return lane


def _check(where: str, raw: str, known: Optional[set[str]]) -> Optional[str]:
    if not raw:
        return None
    if known is not None and raw not in known:
        raise ConfigError(f"{where}: check: {raw!r} is not a harness check")
    return raw


def _params(where: str, raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = yaml_strict.load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: params: not a YAML mapping: {yaml_strict.describe(exc)[1]}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: params: not a mapping ({{case: revoked}}): {raw!r}")
    return value


# --- reading the tables ----------------------------------------------------------------------

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.replace("\\|", "|").strip().strip("`").strip() for c in re.split(r"(?<!\\)\|", body)]


def _markdown_tables(path: Path, text: str) -> Iterable[_Table]:
    lines = text.splitlines()
    section = ""
    i = 0
    while i < len(lines):
        heading = _HEADING.match(lines[i])
        if heading:
            section = heading.group(1).strip()
        if "|" in lines[i] and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1]):
            table = _Table(_cells(lines[i]), i + 1, [], section)
            i += 2
            while i < len(lines) and "|" in lines[i] and lines[i].strip():
                table.rows.append((i + 1, _cells(lines[i])))
                i += 1
            yield table
            continue
        i += 1


def _csv_table(path: Path, text: str) -> _Table:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ("," if text.count(",") >= text.count(";") else ";")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)   # strict: a stray quote is an error
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if not header:
                header, header_line = cells, reader.line_num
            else:
                rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise ConfigError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None
    if not header:
        raise ConfigError(f"{path}: empty: no header row")
    return _Table(header, header_line, rows)
