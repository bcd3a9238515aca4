"""Overhead of the fault proxy, measured against a direct connection in the same run.

    .venv/bin/python benchmarks/fault_proxy.py [--round-trips 3000] [--megabytes 300]

Prints the latency it adds per hop (p50, p99, mean over small round trips) and the throughput of
a bulk transfer through a latency toxic, each beside the direct figure and as a ratio, since the
machines are shared and only same-run ratios mean anything. Toxiproxy's own bar: under 0.3 ms
mean added latency, over 100 MB/s through a latency toxic.
"""
from __future__ import annotations

import argparse
import socket
import socketserver
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness.world.fault_proxy import start_fault_proxy  # noqa: E402

CHUNK = b"x" * (1 << 20)


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := self.request.recv(65536):
            self.request.sendall(data)


class Source(socketserver.BaseRequestHandler):
    def handle(self):
        n = int(self.request.recv(64).split(b"\n")[0])
        while n > 0:
            self.request.sendall(CHUNK[: min(n, len(CHUNK))])
            n -= len(CHUNK)


def serve(handler) -> int:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def round_trips(port: int, n: int) -> list[float]:
    out = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n):
            t0 = time.perf_counter()
            s.sendall(b"ping")
            s.recv(64)
            out.append((time.perf_counter() - t0) * 1000)
    return out[n // 10:]   # drop the warm-up tenth


def throughput(port: int, megabytes: int) -> float:
    total = megabytes * 1_000_000
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.sendall(f"{total}\n".encode())
        got, t0 = 0, time.perf_counter()
        while got < total:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
        return got / 1e6 / (time.perf_counter() - t0)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--round-trips", type=int, default=3000)
    ap.add_argument("--megabytes", type=int, default=300)
    args = ap.parse_args()
    echo, source = serve(Echo), serve(Source)
    child, url = start_fault_proxy(Path(tempfile.mkdtemp(prefix="fp-bench-")))
    try:
        api = httpx.Client(base_url=url, timeout=5)
        via_echo = api.post("/proxies", json={"name": "echo", "upstream": f"127.0.0.1:{echo}"}).json()
        via_source = api.post("/proxies", json={"name": "source", "upstream": f"127.0.0.1:{source}"}).json()
        api.post("/proxies/source/toxics", json={"type": "latency", "attributes": {"latency": 1}})
        pe, ps = int(via_echo["listen"].rsplit(":", 1)[1]), int(via_source["listen"].rsplit(":", 1)[1])

        direct, proxied = round_trips(echo, args.round_trips), round_trips(pe, args.round_trips)
        print(f"round trips: {len(direct)} each (a proxied round trip crosses the proxy twice: one hop each way)")
        print(f"{'':8} {'direct ms':>10} {'proxied ms':>11} {'added/hop ms':>13} {'ratio':>7}")
        for label, fn in (("p50", lambda v: pct(v, 0.5)), ("p99", lambda v: pct(v, 0.99)), ("mean", statistics.fmean)):
            d, p = fn(direct), fn(proxied)
            print(f"{label:8} {d:10.3f} {p:11.3f} {(p - d) / 2:13.3f} {p / d:7.2f}")
        mean_added = (statistics.fmean(proxied) - statistics.fmean(direct)) / 2
        d_mb, p_mb = throughput(source, args.megabytes), throughput(ps, args.megabytes)
        print(f"throughput: direct {d_mb:.0f} MB/s, through a latency toxic {p_mb:.0f} MB/s, ratio {p_mb / d_mb:.2f}")
        print(f"Toxiproxy's bar: mean added latency {mean_added:.3f} ms {'<' if mean_added < 0.3 else '>='} 0.3 ms; "
              f"throughput {p_mb:.0f} MB/s {'>' if p_mb > 100 else '<='} 100 MB/s")
    finally:
        child.stop(grace_s=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
