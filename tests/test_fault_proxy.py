"""The fault proxy: Toxiproxy v2 API compatibility call by call, and each toxic by measurement."""
from __future__ import annotations

import socket
import socketserver
import statistics
import threading
import time

import httpx
import pytest

from harness.chaos.client import ChaosControl, ToxiproxyError
from harness.world.fault_proxy import start_fault_proxy


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
        assert statistics.median(rtt((host, int(port)), 3)) < 40
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
    assert 90 <= added <= 140, added       # 100 ms +- scheduling noise


def test_latency_on_the_upstream_stream(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "latency", "stream": "upstream", "attributes": {"latency": 60}})
    assert 55 <= statistics.median(rtt(addr, 5)) <= 110


def test_jitter_stays_in_bounds_and_varies(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 50, "jitter": 20}})
    samples = rtt(addr, 20)
    assert all(28 <= s <= 90 for s in samples), samples
    assert max(samples) - min(samples) > 10


@pytest.mark.source
def test_bandwidth_caps_the_rate(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "bandwidth", "attributes": {"rate": 100}})  # 100 KB/s
    data, secs, _, _ = fetch(addr, 50_000)
    assert len(data) == 50_000 and 0.4 <= secs <= 0.8, secs


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
    assert len(data) == 10 and end == "eof" and 0.38 <= secs <= 0.9, secs


@pytest.mark.source
def test_timeout_drops_data_and_closes_after_its_time(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "timeout", "attributes": {"timeout": 300}})
    data, secs, _, end = fetch(addr, 100)
    assert data == b"" and end == "eof" and 0.28 <= secs <= 0.8, secs


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
        assert 0.09 <= time.perf_counter() - t0 <= 0.6


@pytest.mark.source
def test_packet_loss_drops_reads(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "packet_loss", "attributes": {"probability": 1}})
    data, _, _, _ = fetch(addr, 1000, timeout=0.8)
    assert data == b""


def test_toxicity_zero_never_applies_and_rolls_are_per_connection(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "latency", "toxicity": 0, "attributes": {"latency": 200}})
    assert statistics.median(rtt(addr, 3)) < 100
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
        assert time.perf_counter() - t0 < 1.0


def test_removing_a_latency_toxic_releases_the_bytes_it_held(fp, proxy):
    name, addr = proxy
    fp["api"].post(f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 3000}})
    with socket.create_connection(addr, timeout=5) as s:
        s.sendall(b"held")
        time.sleep(0.2)
        t0 = time.perf_counter()
        fp["api"].delete(f"/proxies/{name}/toxics/latency_downstream")
        assert s.recv(10) == b"held" and time.perf_counter() - t0 < 0.5
