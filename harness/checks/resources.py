"""Resource growth: the gateway's memory, threads and open files across a bounded soak.

The harness sends a warm-up (the gateway's pools, caches and lazy imports fill), then the soak in
rounds of plain and streamed chat requests, a few at a time, and samples the gateway's whole process
group (its leader and children: uvicorn workers...) from /proc after the warm-up and after each
round. A leak per request shows as growth proportional to the soak; a pool filling once does not.
The bounds are promises (promises.process); without one the claim is UNSUPPORTED, with the figures
measured all the same. Like the other process claims it needs the gateway the harness started (its
pid comes from the world's control endpoint) and runs in the Process lane, one claim at a time.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from harness.checks.base import PASS, CheckContext, Deviation, NotJudged, Unsupported, Verdict, check
from harness.checks.params import params_rule
from harness.client.http import Exchange
from harness.world.processes import group_members

REQUEST_S = 15.0       # each soak request's deadline
SOAK_BUDGET_S = 60.0   # the whole soak, warm-up included: past it the soak stops and nothing is judged
SETTLE_S = 0.5         # after a round, before its sample: the gateway's after-response work ends
MAX_FAILED = 0.05      # more of the soak failing than this: it was no soak of served requests
SIZES = {"warmup": (1, 1000), "requests": (10, 2000), "rounds": (1, 20), "concurrency": (1, 16)}

# One soak per gateway process and soak size, kept for the run: the claims about memory, descriptors and
# threads read the same samples (a soak costs ~20 s against a Python gateway on 2 cores). A restarted
# gateway is another process group, so it is soaked anew.
_SOAKS: dict[tuple[int, int, int, int, int], tuple["_Soak", "Sample", "Sample", float, str]] = {}

# resource -> (what it is, in a reason; the promise that bounds its growth)
RESOURCES = {"rss": ("resident memory", "rss_growth_mb_per_1000"),
             "fds": ("open file descriptors", "fd_growth_max"),
             "threads": ("threads", "thread_growth_max")}


@dataclass(frozen=True)
class Sample:
    """The process group at one moment, `after` soak requests (0: right after the warm-up)."""
    after: int
    processes: int
    rss_mb: float   # MiB: VmRSS summed over the group
    threads: int
    fds: int


def group_usage(pgid: int, after: int) -> Sample:
    """The memory, threads and open files of every process in group `pgid`, from /proc.
    A member gone while it is read is left out; PermissionError goes to the caller."""
    n = rss_kb = threads = fds = 0
    for pid in group_members(pgid):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            open_fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss_kb += int(fields.get("VmRSS", "0 kB").split()[0])   # a zombie has none
        threads += int(fields.get("Threads", "0"))
        fds += open_fds
        n += 1
    return Sample(after, n, round(rss_kb / 1024, 1), threads, fds)


def _sizes(params: dict[str, Any]) -> None:
    for name, (lo, hi) in SIZES.items():
        v = params.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi):
            raise ValueError(f"{name}: {v!r} is not a whole number from {lo} to {hi} (the soak is bounded)")
    if params.get("rounds", 5) > params.get("requests", 200):
        raise ValueError("rounds: more rounds than requests")


def _outcome(ex: Exchange) -> str:
    return f"error: {ex.error}" if ex.error else f"HTTP {ex.status}"


class _Soak:
    """The soak's traffic and samples: every request has its deadline, every round the budget's rest."""

    def __init__(self, ctx: CheckContext, pgid: int, concurrency: int) -> None:
        self.ctx, self.pgid = ctx, pgid
        self.model, self.tag = ctx.model("openai"), ctx.tag()
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="soak")
        self.deadline = time.monotonic() + SOAK_BUDGET_S
        self.sent = self.failed = 0
        self.failures: list[str] = []
        self.samples: list[Sample] = []

    def round(self, n: int) -> None:
        futures: list[Future] = [self.pool.submit(self.ctx.chat, self.model, self.tag, stream=(self.sent + i) % 2 == 1,
                                                  deadline_s=REQUEST_S) for i in range(n)]
        _, pending = wait(futures, timeout=max(0.0, self.deadline - time.monotonic()))
        if pending:
            for f in pending:
                f.cancel()
            wait(pending, timeout=REQUEST_S + 5)   # those already sent end by their own deadline
            done = self.sent + sum(1 for f in futures if f.done() and not f.cancelled())
            raise NotJudged(f"not judged: the soak did not finish within {SOAK_BUDGET_S:.0f}s ({done} requests "
                            "answered): the gateway is too slow here for a soak of this size", self.evidence())
        self.sent += n
        for f in futures:
            ex = f.result()
            if ex.error or ex.status != 200:
                self.failed += 1
                if len(self.failures) < 5:
                    self.failures.append(_outcome(ex))

    def sample(self, after: int) -> Sample:
        time.sleep(SETTLE_S)
        try:
            s = group_usage(self.pgid, after)
        except PermissionError as exc:
            raise NotJudged(f"not judged: the gateway's /proc entries cannot be read: {exc}", self.evidence()) from None
        if s.processes == 0:
            raise NotJudged(f"not judged: the gateway's process group {self.pgid} is gone", self.evidence())
        self.samples.append(s)
        return s

    def evidence(self) -> dict[str, Any]:
        return {"soak_tag": self.tag, "samples": [asdict(s) for s in self.samples], "requests_sent": self.sent,
                "requests_failed": self.failed, "failures": self.failures}


@check("process.resource_growth")
@params_rule(_sizes)
def resource_growth(ctx: CheckContext, resource: Literal["rss", "fds", "threads"], warmup: int = 40,
                    requests: int = 200, rounds: int = 5, concurrency: int = 4) -> Verdict:
    """After a warm-up of `warmup` requests, `requests` more in `rounds` rounds (half of them
    streamed, `concurrency` at a time) grow the gateway's `resource` by no more than its promise:
    RSS in MiB per 1,000 requests, file descriptors and threads in all (back near the warm-up level)."""
    if ctx.process is None:
        raise Unsupported("the harness did not start this gateway (target.url), so it cannot read its process")
    pgid = ctx.process.pid()
    if pgid is None:
        raise NotJudged("not judged: the gateway the harness started is not running")
    key = (pgid, warmup, requests, rounds, concurrency)
    if key in _SOAKS:   # the same process soaked the same way for another resource: its samples hold all three
        soak, base, last, soak_s, judged_by = _SOAKS[key]
    else:
        soak = _Soak(ctx, pgid, concurrency)
        t0 = time.monotonic()
        try:
            soak.round(warmup)
            base = last = soak.sample(0)
            soak.sent = 0   # from here on: the soak proper
            soak.failed, soak.failures = 0, []
            for k in range(rounds):
                soak.round(requests // rounds + (1 if k < requests % rounds else 0))
                last = soak.sample(soak.sent)
        finally:
            soak.pool.shutdown(wait=True, cancel_futures=True)
        soak_s, judged_by = round(time.monotonic() - t0, 1), None
        _SOAKS[key] = (soak, base, last, soak_s, ctx.claim_id)
    growth = {"rss_mb": round(last.rss_mb - base.rss_mb, 1),
              "rss_mb_per_1000": round((last.rss_mb - base.rss_mb) / requests * 1000, 1),
              "fds": last.fds - base.fds, "threads": last.threads - base.threads}
    what, name = RESOURCES[resource]
    bound = getattr(ctx.cfg.promises.process, name)
    evidence = {"resource": resource, "warmup": warmup, "requests": requests, "rounds": rounds,
                "concurrency": concurrency, "soak_s": soak_s, **soak.evidence(),
                **({"soak_shared_with": judged_by} if judged_by else {}),
                "growth": growth, "bound": {f"promises.process.{name}": bound}}
    if soak.failed > MAX_FAILED * requests:
        raise NotJudged(f"not judged: {soak.failed} of {requests} soak requests failed ({'; '.join(soak.failures)}), "
                        "so the soak did not exercise the gateway's serving path", evidence)
    if resource == "rss":
        figure = growth["rss_mb_per_1000"]
        said = (f"{what} went from {base.rss_mb:.1f} to {last.rss_mb:.1f} MiB ({growth['rss_mb']:+.1f}) over "
                f"{requests} requests after a warm-up of {warmup}: {figure:+.1f} MiB per 1,000 requests")
    else:
        figure = growth[resource]
        said = (f"{what} went from {getattr(base, resource)} to {getattr(last, resource)} ({figure:+d}) over "
                f"{requests} requests after a warm-up of {warmup}: {figure / requests:+.2f} per request")
    if bound is None:
        raise Unsupported(f"the gateway promises no bound on the growth of its {what} "
                          f"(promises.process.{name}); measured: {said}", evidence)
    if figure > bound:
        raise Deviation(f"{said}, beyond the promised {bound:g} (promises.process.{name})", evidence)
    return Verdict(PASS, f"{said}, within the promised {bound:g}", evidence)
