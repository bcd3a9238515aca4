"""How much one core of the load generator sustains, against `wrk` on the same endpoint in the same
run, and whether 1,000 concurrent SSE streams from one machine keep correct TTFT accounting.

    .venv/bin/python benchmarks/load_generator.py [--streams 1000] [--seconds 8]

1. plain requests: locust (ChatUser, one process) vs wrk (one thread), same connections, same
   endpoint of one mock provider: the ratio says what share of wrk's rate our generator reaches;
2. the mock provider's ceiling: wrk with more threads and connections;
3. N concurrent streams scripted at the mock (first token after 500 ms, then 100 ms apart): every
   stream must complete, and the measured TTFT must match the script, or the generator is the
   bottleneck.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.config import ProviderCfg  # noqa: E402
from harness.load.outcome import tally  # noqa: E402
from harness.load.run import Profile, run  # noqa: E402
from harness.world.mocks import start_mocks  # noqa: E402

BODY = '{"model": "m", "messages": [{"role": "user", "content": "bench"}]}'


def wrk(url: str, threads: int, conns: int, seconds: int) -> float:
    lua = Path(tempfile.mkdtemp()) / "post.lua"
    lua.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(BODY)}\nwrk.headers["Content-Type"] = "application/json"\n')
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "-s", str(lua), url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--workers", type=int, default=0,
                    help="locust worker processes for the streams part (0: one process); the mock shares the cores")
    args = ap.parse_args()
    child, ports = start_mocks([ProviderCfg(name="oa", kind="openai")], Path(tempfile.mkdtemp(prefix="bench-")))
    base = f"http://127.0.0.1:{ports['oa']}"
    try:
        plain = Profile(name="bench-plain", user="ChatUser", users=50, spawn_rate=50, duration_s=args.seconds)
        loc = run(plain, base, "/v1/chat/completions", "m", None)
        loc_rps = loc["counts"].get("requests", 0) / args.seconds
        if shutil.which("wrk"):
            wrk_rps = wrk(base + "/v1/chat/completions", 1, 50, args.seconds)
            ceiling = wrk(base + "/v1/chat/completions", 2, 200, args.seconds)
            print(f"plain requests, 50 connections: locust (1 process) {loc_rps:.0f} rps, wrk (1 thread) {wrk_rps:.0f} rps, "
                  f"ratio {loc_rps / wrk_rps:.2f}")
            print(f"mock provider ceiling (wrk, 2 threads, 200 connections): {ceiling:.0f} rps")
        else:
            print(f"plain requests: locust (1 process) {loc_rps:.0f} rps; wrk not installed (apt-get install wrk) for the ratio")

        httpx.post(f"{base}/__harness/script", json={"first_token_delay_ms": 500, "token_delay_ms": 100, "tokens": 10},
                   timeout=5)
        streams = Profile(name="bench-streams", user="StreamUser", users=args.streams, spawn_rate=args.streams,
                          duration_s=max(args.seconds, 6))
        res = run(streams, base, "/v1/chat/completions", "m", None, workers=args.workers)
        t, c = res["table"], res["counts"]
        errors = {k: v for k, v in c.items() if k.startswith("error")}
        done = tally(c)
        print(f"{args.streams} concurrent SSE streams ({args.workers or 1} generator process(es)): {done['completed']} completed, errors {errors or 0}; "
              f"TTFT p50 {t['ttft']['p50']:.0f} ms, p99 {t['ttft']['p99']:.0f} ms (scripted 500 ms); "
              f"ITL p50 {t['itl']['p50']:.0f} ms (scripted 100 ms); e2e p50 {t['e2e']['p50']:.0f} ms (scripted ~1400 ms)")
        print(f"TTFT accounting: {t['ttft']['count']} first tokens for {done['completed']} completed streams "
              f"({c.get('started', 0)} started, {done['unfinished']} still running when the run stopped); "
              f"TTFT p50 / script = {t['ttft']['p50'] / 500:.2f}")
    finally:
        child.stop(grace_s=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
