"""The terminal: a consumer of the results stream like every other output.

On a terminal: one live progress bar per lane with its counts. In a CI log (stdout not a
terminal): a line when a lane starts, every quarter of the way, and when it ends. `-v` adds a line
per verdict. At the end: the decision, the findings grouped by cause as a short table, the paths."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.report.env import short

COLOR = {"PASS": "green", "FAIL": "red", "SAFE": "yellow", "PARTIAL": "yellow", "UNSUPPORTED": "bright_black",
         "MISSING": "bright_black", "ERROR": "magenta", "NOT RUN": "bright_black"}
MAX_FINDING_ROWS = 12   # the terminal stays short: the report has them all


def _counts_text(c: Counter) -> str:
    return " ".join(f"[{COLOR[s]}]{s} {c[s]}[/]" for s in COLOR if c[s])


class Terminal:
    def __init__(self, verbose: bool = False, console: Optional[Console] = None) -> None:
        self.console = console or Console(file=sys.stdout, highlight=False)
        if not self.console.is_terminal:   # a CI log: long lines stay whole (grep-able), no cursor tricks
            self.console.soft_wrap, self.console.width = True, 140
        self.live = self.console.is_terminal
        self.verbose = verbose
        self.progress: Optional[Progress] = None
        self.lane_of: dict[str, str] = {}
        self.tasks: dict[str, Any] = {}
        self.counts: dict[str, Counter] = {}
        self.planned: dict[str, int] = {}
        self.next_note: dict[str, int] = {}

    # -- stream events -----------------------------------------------------------------------
    def on_event(self, kind: str, line: dict[str, Any]) -> None:
        if kind == "lane":
            (self._lane_start if line["event"] == "start" else self._lane_end)(line)
        elif kind == "record":
            self._record(line)

    def _lane_start(self, line: dict[str, Any]) -> None:
        lane, ids = line["lane"], line.get("ids", [])
        self.planned[lane], self.counts[lane] = len(ids), Counter()
        self.lane_of.update({i: lane for i in ids})
        if self.live:
            if self.progress is None:
                self.progress = Progress(TextColumn("{task.description:<8}"), BarColumn(bar_width=30), MofNCompleteColumn(),
                                         TimeElapsedColumn(), TextColumn("{task.fields[counts]}"), console=self.console,
                                         transient=False)
                self.progress.start()
            self.tasks[lane] = self.progress.add_task(lane, total=len(ids), counts="")
        else:
            self.next_note[lane] = max(1, len(ids) // 4)
            self.console.print(f"harness: {lane}: {len(ids)} to judge ...")

    def _record(self, line: dict[str, Any]) -> None:
        lane = self.lane_of.get(line["id"])
        if lane is None:
            return
        c = self.counts[lane]
        c[line["status"]] += 1
        done = sum(c.values())
        if self.verbose:
            self.console.print(f"  [{COLOR.get(line['status'], '')}]{line['status']:<11}[/] {line['id']:<14} "
                               f"{short(line['reason'], 100)}", markup=True)
        if self.progress is not None:
            self.progress.update(self.tasks[lane], completed=done, counts=_counts_text(c))
        elif not self.verbose and done >= self.next_note.get(lane, 1) and done < self.planned[lane]:
            self.next_note[lane] = done + max(1, self.planned[lane] // 4)
            self.console.print(f"harness: {lane}: {done}/{self.planned[lane]} {_counts_text(c)}")

    def _lane_end(self, line: dict[str, Any]) -> None:
        lane = line["lane"]
        if self.progress is None:
            c = self.counts.get(lane, Counter())
            self.console.print(f"harness: {lane}: done, {sum(c.values())}/{self.planned.get(lane, 0)} {_counts_text(c)}")

    # -- the runner's own notes --------------------------------------------------------------
    def note(self, text: str) -> None:
        self.console.print(f"harness: {text}", markup=False)

    def world(self, info: Any, pids: dict[str, int]) -> None:
        mocks = ", ".join(f"{n} {p['url']}" + (" (refuses connections)" if p.get("refuses_connections") else "")
                          for n, p in info.providers.items())
        self.note(f"gateway ready at {info.gateway_url} (pid {pids.get('gateway', 'external')}); "
                  f"mock providers (pid {pids.get('mock-providers')}): {mocks}")

    def error(self, text: str) -> None:
        """One line: a long reason (a gateway's last log lines) is in the report and in logs/."""
        self._stop()
        first, *rest = text.strip().splitlines() or [""]
        more = " (more in the report and in logs/)" if any(line.strip() for line in rest) else ""
        print(f"harness: error: {first.rstrip(':; ')}{more}", file=sys.stderr, flush=True)

    def interrupted(self, reached: int) -> None:
        self._stop()
        self.note(f"interrupted: {reached} verdicts were reached and kept; writing a partial report ...")

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    # -- the end -----------------------------------------------------------------------------
    def final(self, view: dict[str, Any], out: Path) -> None:
        self._stop()
        d = view["decision"]
        color = {"BLOCKED": "red", "CLEARED": "green"}.get(d["verdict"], "yellow")
        counts = view["counts"]
        self.console.print(f"[bold {color}]Release gate: {d['verdict']}[/]: {d['why']}.")
        self.console.print(f"{view['total']} claims: " + ", ".join(
            f"{s} {counts[s]}" for s in view["order"] if counts[s]) + (" (partial run)" if view["partial"] else ""),
            markup=False)
        for h in view["headline"]:
            self.console.print(short(h, 160), markup=False)
        if view["groups"]:
            table = Table(title=f"Findings by cause ({len(view['findings'])} in {len(view['groups'])})", show_lines=False,
                          title_justify="left", expand=False)
            table.add_column("claims", no_wrap=True, max_width=44, overflow="ellipsis")
            table.add_column("status", no_wrap=True)
            table.add_column("cause", no_wrap=True, max_width=80, overflow="ellipsis")
            for g in view["groups"][:MAX_FINDING_ROWS]:
                statuses = sorted({str(r.status) for r in g["records"]})
                ids = ", ".join(r.id for r in g["records"][:3]) + (f" +{len(g['records']) - 3}" if len(g["records"]) > 3 else "")
                table.add_row(ids, "/".join(statuses) + (" *" if g["blocking"] else ""), short(g["title"], 90))
            self.console.print(table)
            if len(view["groups"]) > MAX_FINDING_ROWS:
                self.console.print(f"... and {len(view['groups']) - MAX_FINDING_ROWS} more causes in the report", markup=False)
            self.console.print("* blocking", markup=False)
        if view["errors"]:
            self.console.print(f"not judged ({len(view['errors'])}): " + ", ".join(r.id for r in view["errors"][:12])
                               + (" ..." if len(view["errors"]) > 12 else ""), markup=False)
        if view.get("history") and not view["history"]["none"]:
            h = view["history"]
            parts = [f"{k.replace('_', ' ')} {len(h[k])}" for k in ("new_findings", "fixed", "flaky", "newly_covered", "changed") if h[k]]
            self.console.print("since the previous run: " + ", ".join(parts), markup=False)
        elif view.get("history"):
            self.console.print("since the previous run: no change", markup=False)
        self.console.print(f"report: {out / 'report.md'}, {out / 'report.html'}; {out / 'results.jsonl'}, "
                           f"{out / 'junit.xml'}", markup=False, soft_wrap=True)
