"""How much the load generator sustains against `wrk` on the same endpoint in the same run, and
whether 1,000 concurrent SSE streams from one machine keep correct TTFT accounting.

    .venv/bin/python benchmarks/load_generator.py [--streams 1000] [--seconds 8] [--workers 2]

1. plain requests: locust (ChatUser, one process) vs wrk (one thread), same connections, same
   endpoint of one mock provider, back to back: the ratio says what share of wrk's rate our
   generator reaches (speed as a ratio against a baseline in the same run, never an absolute);
2. N concurrent streams scripted at the mock (first token after 500 ms, then 100 ms apart): every
   stream must complete, and TTFT p50 and p99 must come within 5% of the script, or the generator
   (or the mock beside it) is the bottleneck. The first --warmup seconds (connections opening, the
   first burst) run but leave no figure. The per-hop split (harness.load.hops) says which:
   `in` and `out` are the wire and the generator, `provider` is the mock's own time. The run's
   floor (harness.load.floor: event-loop lag, CPU) is printed beside it, and the conditions (cores,
   load average before and after: the machine may be shared).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.config import ProviderCfg  # noqa: E402
from harness.load import floor as load_floor  # noqa: E402
from harness.load.hops import attribute, journal_mark, journal_timings  # noqa: E402
from harness.load.outcome import tally  # noqa: E402
from harness.load.run import Profile, run  # noqa: E402
from harness.world.mocks import start_mocks  # noqa: E402

BODY = '{"model": "m", "messages": [{"role": "user", "content": "bench"}]}'
SCRIPT = {"first_token_delay_ms": 500, "token_delay_ms": 100, "tokens": 10}
TOLERANCE = 0.05   # TTFT p50 and p99 within 5% of the script


def wrk(url: str, threads: int, conns: int, seconds: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        lua = Path(tmp) / "post.lua"
        lua.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY)}\nwrk.headers["Content-Type"] = "application/json"\n')
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "-s", str(lua), url],
                             capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def conditions() -> str:
    la = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}{cpu_pressure()}"


def cpu_pressure() -> str:
    """The kernel's CPU pressure (PSI): the share of the last 10 s in which some runnable task waited
    for a core. The load average counts tasks; this says how much the machine's other work delayed
    ours (a run beside a busy neighbour is not a run on two free cores)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return ""
    m = re.search(r"avg10=([\d.]+)", line)
    return f", CPU pressure {float(m.group(1)):.0f}% (some, 10 s)" if m else ""


class CpuOf:
    """CPU seconds a process tree used between start and stop (the mock provider's, here)."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)

    def __enter__(self) -> "CpuOf":
        self.t0, self.c0 = time.perf_counter(), self._cpu()
        return self

    def _cpu(self) -> float:
        procs = [self.proc] + self.proc.children(recursive=True)
        return sum(sum(p.cpu_times()[:2]) for p in procs if p.is_running())

    def __exit__(self, *exc: object) -> None:
        self.share = (self._cpu() - self.c0) / (time.perf_counter() - self.t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1,
                    help="locust worker processes for the streams part (0 or 1: one process); the mock shares the cores")
    ap.add_argument("--warmup", type=float, default=2.5,
                    help="seconds of the streams part whose requests leave no figure (1,000 connections opening at "
                         "once is a storm of its own, not the steady state)")
    ap.add_argument("--skip-plain", action="store_true", help="only the streams part")
    args = ap.parse_args()
    print(f"machine: {conditions()}; {sys.version.split()[0]}")
    child, ports = start_mocks([ProviderCfg(name="oa", kind="openai")], Path(tempfile.mkdtemp(prefix="bench-")))
    base = f"http://127.0.0.1:{ports['oa']}"
    try:
        if not args.skip_plain:
            plain = Profile(name="bench-plain", user="ChatUser", users=50, spawn_rate=50, duration_s=args.seconds)
            loc = run(plain, base, "/v1/chat/completions", "m", None)
            loc_rps = loc["counts"].get("requests", 0) / args.seconds
            if shutil.which("wrk"):
                wrk_rps = wrk(base + "/v1/chat/completions", 1, 50, args.seconds)
                print(f"plain requests, 50 connections: locust (1 process) {loc_rps:.0f} rps, wrk (1 thread) "
                      f"{wrk_rps:.0f} rps, ratio {loc_rps / wrk_rps:.2f} (goal >= 0.80)")
            else:
                print(f"plain requests: locust (1 process) {loc_rps:.0f} rps; wrk not installed (apt-get install wrk) "
                      "for the ratio")

        httpx.post(f"{base}/__harness/script", json=SCRIPT, timeout=5)
        # Users start over one stream's scripted length, not all in the first second: started at once they
        # stay in step (each sends its next request as its last ends), and each step is a burst of
        # requests and first tokens the mock and the generator serve in a queue.
        stream_s = (SCRIPT["first_token_delay_ms"] + SCRIPT["token_delay_ms"] * (SCRIPT["tokens"] - 1)) / 1000
        streams = Profile(name="bench-streams", user="StreamUser", users=args.streams, spawn_rate=args.streams / stream_s,
                          duration_s=max(args.seconds, 6) + args.warmup, warmup_s=args.warmup, drain_s=30)
        mark = journal_mark(base)
        with CpuOf(child.proc.pid) as mock_cpu:
            res = run(streams, base, "/v1/chat/completions", "m", None, workers=args.workers)
        hops = attribute(res["hdr"].pop("stamps", []), journal_timings(base, mark))
        t, c = res["table"], res["counts"]
        errors = {k: v for k, v in c.items() if k.startswith("error")}
        done = tally(c)
        want = SCRIPT["first_token_delay_ms"]
        p50, p99 = t["ttft"]["p50"], t["ttft"]["p99"]
        ok = p50 <= want * (1 + TOLERANCE) and p99 <= want * (1 + TOLERANCE)
        print(f"{args.streams} concurrent SSE streams ({max(1, args.workers)} generator process(es)): "
              f"{done['completed']} completed, errors {errors or 0}; TTFT p50 {p50:.0f} ms (x{p50 / want:.3f}), "
              f"p99 {p99:.0f} ms (x{p99 / want:.3f}) against the scripted {want} ms: "
              f"{'within' if ok else 'NOT within'} {TOLERANCE:.0%}; ITL p50 {t['itl']['p50']:.0f} ms (scripted 100 ms); "
              f"e2e p50 {t['e2e']['p50']:.0f} ms (scripted 1400 ms)")
        print(f"TTFT accounting: {t['ttft']['count']} first tokens for {done['completed']} completed streams "
              f"({c.get('started', 0)} started, {done['unfinished']} still running when the run stopped; "
              f"{c.get('warmup', 0)} sent in the first {args.warmup:g} s, warm-up, in no figure)")
        ht = hops["table"]
        if ht:
            print("per hop (ms): " + "; ".join(f"{h} p50 {ht[h]['p50']:.1f} p99 {ht[h]['p99']:.1f}"
                                               for h in ("in", "provider", "out")) + f" ({hops['matched']} matched)")
        fl = load_floor.measure(res, None, load_floor.script_times(10, 100, 500))
        lag = fl.get("gen_lag") or {}
        print(f"generator floor: event-loop lag p50 {lag.get('p50', 0):.1f} ms, p99 {lag.get('p99', 0):.1f} ms; "
              f"CPU {fl['cpu_share'] or 0:.0%} of a core per generator process; mock provider CPU "
              f"{mock_cpu.share:.0%} of a core")
        print(f"machine after: {conditions()}")
    finally:
        child.stop(grace_s=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
