"""The fault proxy: Toxiproxy v2 API compatibility call by call, and each toxic by measurement."""
from __future__ import annotations

import os
import socket
import socketserver
import statistics
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from harness.chaos.client import ChaosControl, ToxiproxyError
from harness.world.fault_proxy import start_fault_proxy
from timing import bound

ROOT = Path(__file__).resolve().parent.parent


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:   # the proxy reset us on purpose
            pass


class _Source(socketserver.BaseRequestHandler):
    """Sends the number of bytes the client asks for (an ASCII line), then closes."""
    def handle(self):
        try:
            n = int(self.request.recv(64).split(b"\n")[0])
            self.request.sendall(b"x" * n)
        except (OSError, ValueError):   # the client went away, or a toxic cut the request
            pass


def _serve(handler):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def fp(tmp_path_factory):
    child, url = start_fault_proxy(tmp_path_factory.mktemp("fp"), seed=42)
    echo, source = _serve(_Echo), _serve(_Source)
    api = httpx.Client(base_url=url, timeout=5)
    yield {"url": url, "api": api, "echo": f"127.0.0.1:{echo.server_address[1]}",
           "source": f"127.0.0.1:{source.server_address[1]}", "control": ChaosControl(url)}
    api.close()
    echo.shutdown()
    source.shutdown()
    child.stop(grace_s=3)


@pytest.fixture
def proxy(fp, request):
    """A fresh proxy per test, to the echo server unless the test is marked with 'source'."""
    name = request.node.name.replace("[", "_").replace("]", "")[:40]
    upstream = fp["source"] if "source" in request.keywords else fp["echo"]
    r = fp["api"].post("/proxies", json={"name": name, "upstream": upstream, "listen": "127.0.0.1:0"})
    assert r.status_code == 201, r.text
    host, port = r.json()["listen"].rsplit(":", 1)
    yield name, (host, int(port))
    fp["api"].delete(f"/proxies/{name}")


def rtt(addr, n=10, payload=b"ping"):
    out = []
    with socket.create_connection(addr, timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n):
            t0 = time.perf_counter()
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                got += s.recv(65536)
            out.append((time.perf_counter() - t0) * 1000)
    return out


def fetch(addr, n, timeout=10):
    """Asks the source for n bytes; returns (bytes, seconds, number of reads, how it ended)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(f"{n}\n".encode())
        data, reads, t0, end = b"", 0, time.perf_counter(), "eof"
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                reads += 1
        except ConnectionResetError:
            end = "reset"
        except socket.timeout:
            end = "timeout"
        return data, time.perf_counter() - t0, reads, end


def _recv_exactly(s, n):
    got = b""
    while len(got) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def _recv_until_closed(s):
    got = b""
    while chunk := s.recv(65536):
        got += chunk
    return got


# -- API, call by call --------------------------------------------------------------------------
def test_version(fp):
    r = fp["api"].get("/version")
    assert r.status_code == 200 and r.json()["version"].startswith("2.")
    assert fp["control"].version().startswith("2.")


def test_create_returns_201_with_the_real_port(fp, proxy):
    name, addr = proxy
    body = fp["api"].get(f"/proxies/{name}").json()
    assert body["enabled"] is True and body["toxics"] == [] and body["listen"].endswith(f":{addr[1]}") and addr[1] != 0
    assert rtt(addr, 1)   # it really proxies


def test_create_errors(fp, proxy):
    name, _ = proxy
    dup = fp["api"].post("/proxies", json={"name": name, "upstream": fp["echo"]})
    assert dup.status_code == 409 and dup.json() == {"error": "proxy already exists", "status": 409}
    missing = fp["api"].post("/proxies", json={"name": "x"})
    assert missing.status_code == 400 and missing.json()["error"] == "missing required field: upstream"
    bad = fp["api"].post("/proxies", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"].startswith("bad request body")
    remote = fp["api"].post("/proxies", json={"name": "far", "upstream": "10.1.2.3:80"})
    assert remote.status_code == 400 and "loopback" in remote.json()["error"]


def test_index_is_an_object_keyed_by_name(fp, proxy):
    name, _ = proxy
    body = fp["api"].get("/proxies").json()
    assert isinstance(body, dict) and body[name]["name"] == name and body[name]["toxics"] == []


def test_missing_names_404(fp, proxy):
    name, _ = proxy
    for path in ("/proxies/nope", "/proxies/nope/toxics", f"/proxies/{name}/toxics/nope"):
        r = fp["api"].get(path)
        assert r.status_code == 404 and r.json()["status"] == 404, path
    assert fp["api"].delete("/proxies/nope").json() == {"error": "proxy not found", "status": 404}


def test_disable_closes_listener_and_connections_enable_rebinds(fp, proxy):
    name, addr = proxy
    live = socket.create_connection(addr, timeout=5)
    r = fp["api"].post(f"/proxies/{name}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert live.recv(10) == b""                                    # the live connection was closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(addr, timeout=2)
    r = fp["api"].patch(f"/proxies/{name}", json={"enabled": True})
    assert r.status_code == 200 and r.json()["listen"].endswith(f":{addr[1]}")
    assert rtt(addr, 1)
    live.close()


def test_populate_creates_and_replaces(fp):
    body = [{"name": "pop-a", "upstream": fp["echo"], "listen": "127.0.0.1:0"},
            {"name": "pop-b", "upstream": fp["echo"], "listen": "127.0.0.1:0"}]
    r = fp["api"].post("/populate", json=body)
    assert r.status_code == 201 and [p["name"] for p in r.json()["proxies"]] == ["pop-a", "pop-b"]
    r = fp["control"].populate([{"name": "pop-a", "upstream": fp["source"], "listen": "127.0.0.1:0"}])
    assert r["proxies"][0]["upstream"] == fp["source"]
    bad = fp["api"].post("/populate", json=[{"name": "pop-c"}])
    assert bad.status_code == 400 and bad.json()["proxies"] == []
    for n in ("pop-a", "pop-b"):
        assert fp["api"].delete(f"/proxies/{n}").status_code == 204


def test_toxic_crud(fp, proxy):
    name, _ = proxy
    api = fp["api"]
    r = api.post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 10}})
    assert r.status_code == 200 and r.json() == {"name": "latency_downstream", "type": "latency", "stream": "downstream",
                                                 "toxicity": 1.0, "attributes": {"latency": 10, "jitter": 0}}
    assert api.post(f"/proxies/{name}/toxics", json={"type": "latency"}).status_code == 409
    assert api.post(f"/proxies/{name}/toxics", json={"type": "nope"}).json() == {"error": "invalid toxic type", "status": 400}
    assert api.post(f"/proxies/{name}/toxics", json={"type": "latency", "stream": "sideways"}).status_code == 400
    assert [t["name"] for t in api.get(f"/proxies/{name}/toxics").json()] == ["latency_downstream"]
    r = api.post(f"/proxies/{name}/toxics/latency_downstream", json={"attributes": {"jitter": 5}, "toxicity": 0.5})
    assert r.status_code == 200 and r.json()["attributes"] == {"latency": 10, "jitter": 5} and r.json()["toxicity"] == 0.5
    assert api.get(f"/proxies/{name}/toxics/latency_downstream").json()["attributes"]["jitter"] == 5
    assert api.delete(f"/proxies/{name}/toxics/latency_downstream").status_code == 204
    assert api.get(f"/proxies/{name}/toxics/latency_downstream").status_code == 404


def test_reset_enables_all_and_removes_toxics(fp, proxy):
    name, addr = proxy
    api = fp["api"]
    api.post(f"/proxies/{name}/toxics", json={"type": "timeout", "attributes": {"timeout": 0}})
    api.post(f"/proxies/{name}", json={"enabled": False})
    assert api.post("/reset").status_code == 204
    body = api.get(f"/proxies/{name}").json()
    assert body["enabled"] is True and body["toxics"] == []
    assert rtt(addr, 1)


def test_delete_204(fp):
    assert fp["api"].post("/proxies", json={"name": "gone", "upstream": fp["echo"]}).status_code == 201
    assert fp["api"].delete("/proxies/gone").status_code == 204
    assert fp["api"].get("/proxies/gone").status_code == 404


def test_toxiproxy_python_client_works_through_our_wrapper(fp):
    c = fp["control"]
    p = c.create("via-client", upstream=fp["echo"])
    try:
        host, port = c.listen_address("via-client").rsplit(":", 1)
        c.add_toxic("via-client", "latency", latency=80)
        assert statistics.median(rtt((host, int(port)), 3)) >= 75
        c.update_toxic("via-client", "latency_downstream", latency=0)
        assert min(rtt((host, int(port)), 3)) < 75      # no longer held back by the 80 ms
        c.remove_toxic("via-client", "latency_downstream")
        assert p.toxics() == {}
        with pytest.raises(ToxiproxyError) as err:
            c.update_toxic("via-client", "ghost", latency=1)
        assert err.value.status == 404
    finally:
        c.server.destroy(c.proxy("via-client"))


# -- toxics, by measurement -----------------------------------------------------------------------
def test_latency_adds_its_delay(fp, proxy):
    name, addr = proxy
    base = statistics.median(rtt(addr))
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 100}})
    added = statistics.median(rtt(addr)) - base
    assert 90 <= added <= bound(0.1) * 1000, added       # 100 ms, give or take the machine


def test_latency_on_the_upstream_stream(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "latency", "stream": "upstream", "attributes": {"latency": 60}})
    assert 55 <= statistics.median(rtt(addr, 5)) <= bound(0.06) * 1000


def test_jitter_stays_in_bounds_and_varies(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 50, "jitter": 20}})
    samples = rtt(addr, 20)
    assert all(28 <= s <= bound(0.07) * 1000 for s in samples), samples
    assert max(samples) - min(samples) > 10


@pytest.mark.source
def test_bandwidth_caps_the_rate(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "bandwidth", "attributes": {"rate": 100}})  # 100 KB/s
    data, secs, _, _ = fetch(addr, 50_000)
    assert len(data) == 50_000 and 0.4 <= secs <= bound(0.5), secs


@pytest.mark.source
def test_limit_data_closes_after_n_bytes(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "limit_data", "attributes": {"bytes": 1000}})
    data, _, _, _ = fetch(addr, 50_000)
    assert len(data) == 1000


def test_limit_data_counts_from_when_it_was_added(fp, proxy):
    # As in Toxiproxy: a connection that carried traffic before the toxic (a gateway's pooled
    # connection) still gets the full allowance after it.
    name, addr = proxy
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(b"a" * 500)
        assert _recv_exactly(s, 500) == b"a" * 500
        fp["api"].post(f"/proxies/{name}/toxics", json={"type": "limit_data", "stream": "downstream",
                                                        "attributes": {"bytes": 300}})
        time.sleep(0.05)
        s.sendall(b"b" * 200)
        assert _recv_exactly(s, 200) == b"b" * 200     # 200 of the 300 allowed since the toxic
        s.sendall(b"c" * 200)
        assert _recv_until_closed(s) == b"c" * 100      # the rest of the allowance, then the close


@pytest.mark.source
def test_slicer_cuts_into_small_delayed_pieces(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "slicer",
                                                    "attributes": {"average_size": 1, "size_variation": 0, "delay": 3000}})
    data, secs, reads, _ = fetch(addr, 60)
    assert len(data) == 60 and reads >= 30 and secs >= 59 * 0.003 * 0.9


@pytest.mark.source
def test_slow_close_delays_the_close(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "slow_close", "attributes": {"delay": 400}})
    data, secs, _, end = fetch(addr, 10)
    assert len(data) == 10 and end == "eof" and 0.38 <= secs <= bound(0.4), secs


@pytest.mark.source
def test_timeout_drops_data_and_closes_after_its_time(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "timeout", "attributes": {"timeout": 300}})
    data, secs, _, end = fetch(addr, 100)
    assert data == b"" and end == "eof" and 0.28 <= secs <= bound(0.3), secs


@pytest.mark.source
def test_timeout_zero_holds_the_connection_open(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "timeout", "attributes": {"timeout": 0}})
    data, secs, _, end = fetch(addr, 100, timeout=0.8)
    assert data == b"" and end == "timeout"


def test_reset_peer_sends_a_real_rst(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "reset_peer", "attributes": {"timeout": 100}})
    with socket.create_connection(addr, timeout=5) as s:
        t0 = time.perf_counter()
        with pytest.raises(ConnectionResetError):   # an RST, not an orderly close (which reads b"")
            s.recv(10)
        assert 0.09 <= time.perf_counter() - t0 <= bound(0.1)


@pytest.mark.source
def test_packet_loss_drops_reads(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "packet_loss", "attributes": {"probability": 1}})
    data, _, _, _ = fetch(addr, 1000, timeout=0.8)
    assert data == b""


def test_toxicity_zero_never_applies_and_rolls_are_per_connection(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "latency", "toxicity": 0, "attributes": {"latency": 200}})
    assert min(rtt(addr, 3)) < 200     # applied, every round trip would take 200 ms or more
    fp["api"].post(f"/proxies/{name}/toxics/latency_downstream", json={"toxicity": 0.5})
    slow = [statistics.median(rtt(addr, 1)) > 150 for _ in range(16)]   # 16 connections, seeded rolls
    assert 2 <= sum(slow) <= 14, slow


def test_a_toxic_added_mid_connection_applies_at_once(fp, proxy):
    name, addr = proxy
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(b"a")
        assert s.recv(10) == b"a"
        fp["api"].post(f"/proxies/{name}/toxics", json={"type": "timeout", "attributes": {"timeout": 200}})
        s.sendall(b"b")
        t0 = time.perf_counter()
        assert s.recv(10) == b""                     # dropped, then closed
        assert time.perf_counter() - t0 < bound(0.2)


def test_removing_a_latency_toxic_releases_the_bytes_it_held(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 3000}})
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(b"held")
        time.sleep(0.2)
        t0 = time.perf_counter()
        fp["api"].delete(f"/proxies/{name}/toxics/latency_downstream")
        assert s.recv(10) == b"held" and time.perf_counter() - t0 < bound(0.02)   # not the 3 s


# -- the proxy's own robustness ------------------------------------------------------------------
class InProcessFaultProxy:
    """The fault proxy's API served from a thread of this process, so a test can break its code
    (monkeypatch) and watch what the harness makes of a proxy that fails."""

    def __init__(self, seed: int = 0) -> None:
        import asyncio

        from harness.chaos.api import serve
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner, port = asyncio.run_coroutine_threadsafe(serve("127.0.0.1", 0, seed), self.loop).result(10)
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        import asyncio

        async def shutdown() -> None:
            await self.runner.cleanup()
            # what the API's keep-alive connections left: ended here, not destroyed pending at exit
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_a_failure_of_the_proxy_is_logged_counted_and_served(fp, monkeypatch, caplog):
    """A bug inside a link (here: the latency toxic raises) closes that connection and is recorded
    where the chaos check reads it (GET /errors), never swallowed as if the network had done it."""
    from harness.chaos import toxics

    def broken(self, link, chunk):
        raise RuntimeError("a bug in the latency toxic")

    monkeypatch.setattr(toxics.Latency, "chunk", broken)
    inproc = InProcessFaultProxy()
    try:
        c = ChaosControl(inproc.url)
        before = c.errors()["count"]
        c.create("broken", upstream=fp["echo"])
        host, port = c.listen_address("broken").rsplit(":", 1)
        c.add_toxic("broken", "latency", latency=10)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"ping")
            assert _recv_until_closed(s) == b""          # the connection the bug hit is closed
        deadline = time.monotonic() + bound(1)
        while c.errors()["count"] == before and time.monotonic() < deadline:
            time.sleep(0.02)
        errors = c.errors()
        assert errors["count"] == before + 1, errors
        assert errors["recent"][-1]["where"] == "proxy broken connection 0 downstream read", errors
        assert errors["recent"][-1]["error"] == "RuntimeError: a bug in the latency toxic"
        assert any("a bug in the latency toxic" in r.getMessage() for r in caplog.records)
        c.remove_toxic("broken", "latency_downstream")
        assert rtt((host, int(port)), 1)                # the proxy itself goes on serving
        c.close()
    finally:
        inproc.stop()


def test_a_server_without_an_errors_endpoint_reports_none(fp):
    """A real Toxiproxy has no /errors: the chaos check then trusts the proxy (None: not known)."""
    import http.server

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"404 page not found")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    c = ChaosControl(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        assert c.errors() is None
    finally:
        c.close()
        server.shutdown()
    assert fp["control"].errors() == {"count": 0, "recent": []}   # ours: a count, and none so far


def _stop_with_a_peer_that_reads_nothing(tmp_path) -> str:
    """A script: a proxy whose client never reads while its upstream floods it (an orderly close
    cannot flush), then stop(). Prints how long stop took, or HANG."""
    script = tmp_path / "stop.py"
    script.write_text(
        "import asyncio, sys, time\n"
        "from harness.chaos.proxy import Proxy, STOP_S\n"
        "async def flood(r, w):\n"
        "    try:\n"
        "        while True:\n"
        "            w.write(b'x' * 65536); await w.drain()\n"
        "    except (ConnectionError, OSError):\n"
        "        pass\n"
        "async def main():\n"
        "    up = await asyncio.start_server(flood, '127.0.0.1', 0)\n"
        "    p = Proxy('p', '127.0.0.1:0', f\"127.0.0.1:{up.sockets[0].getsockname()[1]}\")\n"
        "    await p.start()\n"
        "    idle = await asyncio.open_connection('127.0.0.1', int(p.listen.rsplit(':', 1)[1]))\n"
        "    full = await asyncio.open_connection('127.0.0.1', int(p.listen.rsplit(':', 1)[1]))\n"
        "    await asyncio.sleep(0.5)   # the buffers fill up: nobody reads\n"
        "    t0 = time.monotonic()\n"
        "    try:\n"
        "        await asyncio.wait_for(p.stop(), float(sys.argv[1]))\n"
        "        print(f'STOPPED {time.monotonic() - t0:.3f} {STOP_S} {len(p.connections)}')\n"
        "    except asyncio.TimeoutError:\n"
        "        print('HANG')\n"
        "    up.close()\n"
        "asyncio.run(main())\n")
    return str(script)


def _pythons_from_312() -> list[str]:
    """Interpreters >= 3.12 on this machine (requires-python admits them; their Server.wait_closed
    waits for every accepted connection). The proxy module needs nothing beyond the stdlib."""
    import glob
    import shutil
    found = {shutil.which(n) for n in ("python3.12", "python3.13", "python3.14")}
    found |= set(glob.glob("/root/.pyenv/versions/3.1[2-9]*/bin/python"))
    return sorted(p for p in found if p and subprocess.run([p, "-c", "import sys; assert sys.version_info >= (3, 12)"],
                                                          capture_output=True, timeout=30).returncode == 0)


def test_stop_is_bounded_even_when_a_peer_reads_nothing(tmp_path):
    import sys
    from harness.chaos.proxy import STOP_S
    r = subprocess.run([sys.executable, _stop_with_a_peer_that_reads_nothing(tmp_path), str(bound(STOP_S) + 5)],
                       capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    words = r.stdout.split()
    assert words and words[0] == "STOPPED", r.stdout + r.stderr
    assert float(words[1]) <= bound(STOP_S) and words[3] == "0", r.stdout


def test_stop_does_not_hang_on_python_312_and_later(tmp_path):
    """From 3.12, wait_closed() waits for the accepted connections: stop() must close them first."""
    pythons = _pythons_from_312()
    if not pythons:
        pytest.skip("no Python >= 3.12 on this machine")
    from harness.chaos.proxy import STOP_S
    for py in pythons:
        r = subprocess.run([py, _stop_with_a_peer_that_reads_nothing(tmp_path), str(bound(STOP_S) + 5)],
                           capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        words = r.stdout.split()
        assert words and words[0] == "STOPPED" and float(words[1]) <= bound(STOP_S), (py, r.stdout, r.stderr[-2000:])


def test_the_buffer_between_read_and_write_is_bounded(fp):
    """Backpressure: a client that reads nothing holds the proxy to BUFFER_BYTES (plus the kernel's
    socket buffers), so the sender is pushed back instead of believing it delivered everything."""
    from harness.chaos.proxy import BUFFER_BYTES, READ_SIZE
    srv = socket.create_server(("127.0.0.1", 0))
    sent = [0]

    def flood():
        conn, _ = srv.accept()
        conn.settimeout(3)
        try:
            while True:
                sent[0] += conn.send(b"x" * 65536)
        except OSError:   # blocked for 3 s (pushed back), or closed at the end of the test
            pass
        conn.close()

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    name = "bounded"
    r = fp["api"].post("/proxies", json={"name": name, "upstream": f"127.0.0.1:{srv.getsockname()[1]}"})
    try:
        host, port = r.json()["listen"].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            t.join(bound(3) + 2)   # the sender blocks once every buffer on the way is full
            assert not t.is_alive(), "the sender was never pushed back"
            kernel = 4 * 8 * 1024 * 1024   # generous: four socket buffers at Linux's default maximum
            assert sent[0] <= BUFFER_BYTES + READ_SIZE + kernel, sent[0]
            # ...and nothing is lost: reading now gets everything the sender got rid of
            got, client_deadline = 0, time.monotonic() + bound(5)
            client.settimeout(1)
            while got < sent[0] and time.monotonic() < client_deadline:
                got += len(client.recv(1 << 20))
            assert got == sent[0]
    finally:
        fp["api"].delete(f"/proxies/{name}")
        srv.close()


def test_two_servers_in_one_process_each_get_their_own_calls(fp, tmp_path):
    """The toxiproxy-python wrapper is per instance: a second ChaosControl in the process (another
    server) does not take over the first one's calls, nor the proxy objects it handed out."""
    child, url2 = start_fault_proxy(tmp_path, seed=1)
    a, b = fp["control"], ChaosControl(url2)
    try:
        pa = a.create("twin", upstream=fp["echo"])
        pb = b.create("twin", upstream=fp["source"])
        a.add_toxic("twin", "latency", latency=5)
        b.add_toxic("twin", "timeout", timeout=0)
        # every path the library offers, on both, after both exist
        assert set(pa.toxics()) == {"latency_downstream"} and set(pb.toxics()) == {"timeout_downstream"}
        assert a.proxy("twin").upstream == fp["echo"] and b.proxy("twin").upstream == fp["source"]
        assert set(a.server.proxies()) >= {"twin"} and fp["api"].get("/proxies/twin").json()["upstream"] == fp["echo"]
        assert httpx.get(f"{url2}/proxies/twin", timeout=5).json()["upstream"] == fp["source"]

        def hammer(control, toxic, n=20):
            for _ in range(n):
                assert set(control.proxy("twin").toxics()) == {toxic}
        threads = [threading.Thread(target=hammer, args=(a, "latency_downstream")),
                   threading.Thread(target=hammer, args=(b, "timeout_downstream"))]
        errors: list[BaseException] = []
        for t in threads:
            t.run = (lambda run: lambda: _record(run, errors))(t.run)
            t.start()
        for t in threads:
            t.join(bound(10))
        assert not errors, errors
        pb.destroy_toxic("timeout_downstream")
        assert pa.toxics() and not pb.toxics()
    finally:
        for control in (a, b):
            p = control.proxy("twin")
            if p is not None:
                control.server.destroy(p)
        b.close()
        child.stop(grace_s=3)
    assert fp["api"].get("/proxies/twin").status_code == 404


def _record(fn, errors):
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - handed to the test thread
        errors.append(exc)


def test_the_library_keeps_its_own_behaviour_outside_a_chaos_control(fp):
    """Our dispatch is global (the library has one class for every call) but inert: a plain
    toxiproxy-python user in the same process still talks to APIConsumer's host and port."""
    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer
    host, port = fp["url"].split("//")[1].rsplit(":", 1)
    old = APIConsumer.host, APIConsumer.port
    APIConsumer.host, APIConsumer.port = host, int(port)
    try:
        assert "twin" not in Toxiproxy().proxies()
        assert Toxiproxy().get_proxy("nope") is None
    finally:
        APIConsumer.host, APIConsumer.port = old


def test_a_latency_toxic_added_on_a_pooled_connection_only_delays_it(fp, proxy):
    """As with Toxiproxy: a gateway's pooled connection stays usable when a latency toxic (with
    jitter) comes and goes: every byte arrives, in order, delayed by latency +- jitter, and
    nothing is closed or reset (CM-19.4 relies on it)."""
    name, addr = proxy
    with socket.create_connection(addr, timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"warm")
        assert _recv_exactly(s, 4) == b"warm"          # pooled: it has carried traffic before
        fp["api"].post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 300, "jitter": 60}})
        for i in range(5):
            msg = f"message {i};".encode() * 50
            t0 = time.perf_counter()
            s.sendall(msg)
            assert _recv_exactly(s, len(msg)) == msg
            assert 0.3 - 0.06 - 0.01 <= time.perf_counter() - t0 <= bound(0.36), i
        assert fp["api"].delete(f"/proxies/{name}/toxics/latency_downstream").status_code == 204
        s.sendall(b"after")
        assert _recv_exactly(s, 5) == b"after"
