"""The load generator's lean HTTP/1.1 client (harness/load/wire.py): bodies decoded as they arrive
(chunked, sized, until close) whatever the reads' boundaries, keep-alive, and each way an exchange
breaks named. A scripted loopback server sends exact bytes in exact pieces; every wait is bounded."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from harness.load.wire import Connection, WireError
from timing import bound

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


class Scripted:
    """Accepts connections on a loopback port; for each request it sends `pieces` (bytes, or a
    float: a pause in seconds), then keeps the connection for the next request or closes it."""

    def __init__(self, pieces: list, close: bool = False, requests_per_conn: int = 5) -> None:
        self.pieces, self.close, self.per_conn = pieces, close, requests_per_conn
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)   # accept() wakes up often enough to see stop()
        self.stopped = False
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 10   # bounded: the test's life
        while time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                if self.stopped:
                    return
                continue
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(1)   # the next request on a kept-alive connection, or give up
                for _ in range(self.per_conn):
                    data = b""
                    while b"\r\n\r\n" not in data:
                        more = conn.recv(65536)
                        if not more:
                            break
                        data += more
                    if not data:
                        break
                    self.requests.append(data)
                    for p in self.pieces:
                        if isinstance(p, float):
                            time.sleep(p)
                        else:
                            conn.sendall(p)
                    if self.close:
                        break

    def stop(self) -> None:
        self.stopped = True
        self.thread.join(timeout=10)
        self.sock.close()
        self.thread.join(timeout=10)


@pytest.fixture
def server(request):
    s = Scripted(*request.param) if isinstance(request.param, tuple) else Scripted(request.param)
    yield s
    s.stop()


EVENTS = [b'data: {"n": 1}\n\n', b'data: {"n": 2}\n\n', b"data: [DONE]\n\n"]
CHUNKED = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in EVENTS) + b"0\r\n\r\n"


@pytest.mark.parametrize("server", [
    [HEAD + CHUNKED],                                                      # all in one read
    [HEAD[:20], 0.02, HEAD[20:] + CHUNKED[:7], 0.02, CHUNKED[7:30], 0.02, CHUNKED[30:]],   # split anywhere
    [HEAD] + [CHUNKED[i:i + 1] for i in range(len(CHUNKED))],              # a byte at a time
], indirect=True)
def test_chunked_bodies_decode_whatever_the_reads(server):
    c = Connection(server.url, timeout_s=5)
    r = c.request("POST", "/v1/chat/completions", b'{"x": 1}', {"Content-Type": "application/json"})
    assert r.status == 200 and r.headers["content-type"] == "text/event-stream"
    assert r.read() == b"".join(EVENTS) and r.complete
    sent = server.requests[0]
    assert sent.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n") and b"Content-Length: 8\r\n" in sent
    c.close()


@pytest.mark.parametrize("server", [[HEAD + b"%x\r\n%s\r\n" % (len(EVENTS[0]), EVENTS[0]), 0.3,
                                     b"%x\r\n%s\r\n0\r\n\r\n" % (len(EVENTS[1]), EVENTS[1])]], indirect=True)
def test_each_piece_is_yielded_when_it_arrives(server):
    """The first event is yielded before the second is sent: a token's arrival time is kept."""
    c = Connection(server.url, timeout_s=5)
    r = c.request("POST", "/", b"", {})
    times = [(piece, time.perf_counter()) for piece in r.chunks()]
    assert [p for p, _ in times] == EVENTS[:2]
    assert times[1][1] - times[0][1] >= 0.25, times
    c.close()


@pytest.mark.parametrize("server", [[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"]], indirect=True)
def test_keep_alive_reuses_one_connection(server):
    c = Connection(server.url, timeout_s=5)
    for _ in range(3):
        r = c.request("POST", "/", b"{}", {})
        assert r.read() == b"hello"
    assert server.accepted == 1 and len(server.requests) == 3
    c.close()


@pytest.mark.parametrize("server", [([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"], True)], indirect=True)
def test_a_connection_the_peer_closed_is_opened_anew(server):
    c = Connection(server.url, timeout_s=5)
    assert c.request("POST", "/", b"", {}).read() == b"hello"
    time.sleep(0.1)   # the peer has closed its end by now
    assert c.request("POST", "/", b"", {}).read() == b"hello"
    assert server.accepted == 2
    c.close()


@pytest.mark.parametrize("server,kind", [
    ([HEAD + b"zz\r\n"], "garbage"),
    ([HEAD + b"%x\r\n%s" % (len(EVENTS[0]), EVENTS[0][:5])], "closed"),   # cut mid-chunk
    ([b"NOT HTTP\r\n\r\n"], "garbage"),
    ([HEAD, 3.0], "timeout"),
], indirect=["server"])
def test_a_broken_exchange_is_named(server, kind):
    server.close = True
    c = Connection(server.url, timeout_s=1)
    with pytest.raises(WireError) as e:
        c.request("POST", "/", b"", {}).read()
    assert e.value.kind == kind
    assert c.sock is None   # a broken connection is never reused
    c.close()


def test_nothing_listening_is_a_connect_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]   # bound, not listening: refused
        with pytest.raises(WireError) as e:
            Connection(f"http://127.0.0.1:{port}", timeout_s=2).request("POST", "/", b"", {})
    assert e.value.kind == "connect"


@pytest.mark.parametrize("server", [[HEAD + b"5\r\nhello\r\n", 3.0]], indirect=True)
def test_the_request_deadline_bounds_a_slow_stream(server):
    c = Connection(server.url, timeout_s=10)
    t0 = time.monotonic()
    r = c.request("POST", "/", b"", {}, deadline_s=0.5)
    with pytest.raises(WireError) as e:
        for _ in r.chunks():
            time.sleep(0.6)   # the next read comes after the deadline
    assert e.value.kind == "deadline" and time.monotonic() - t0 < bound(1.2)   # the deadline and one late read


def test_a_profiles_timeout_ends_a_silent_stream_as_a_timeout_error(mocks):
    # The provider sends its first token after 4 s; the profile gives a stream 0.5 s. Every stream is
    # then a timeout error, none a completed stream, and the run is not held for the provider's 4 s
    # each time (with the old fixed 60 s deadline, each stream would have completed late instead).
    from harness.load.outcome import tally
    from harness.load.run import Profile, run
    oa = mocks["oa"]
    oa.script(model="timeout-probe", first_token_delay_ms=4000, times=100)
    try:
        profile = Profile(name="t", user="StreamUser", users=2, spawn_rate=10, duration_s=1.5, drain_s=1, timeout_s=0.5)
        res = run(profile, mocks["urls"]["oa"], "/v1/chat/completions", "timeout-probe", None)
    finally:
        oa.clear_script()
    counts = res["counts"]
    assert counts.get("error:stream_broken:timeout", 0) == counts["started"] >= 2, counts
    assert tally(counts)["completed"] == 0, counts


def test_a_fan_past_its_timeout_ends_its_streams_and_warm_up_fans_leave_no_figure(mocks):
    # Each stream trickles a token every 0.3 s for 6 s: never silent for the 1 s timeout, so only the
    # fan's own deadline ends it. Its streams are then ended and their connections closed, each a
    # timeout error; left running they would share a connection with the next fan's streams and
    # turn up as garbage or resets. Fans sent in the 1.2 s warm-up are in no count.
    from harness.load.run import Profile, run
    oa = mocks["oa"]
    oa.script(model="fan-probe", token_delay_ms=300, tokens=20, times=100)
    try:
        profile = Profile(name="f", user="FanoutStreamUser", fanout=2, users=1, spawn_rate=10, duration_s=3.5,
                          warmup_s=1.2, drain_s=2, timeout_s=1)
        res = run(profile, mocks["urls"]["oa"], "/v1/chat/completions", "fan-probe", None)
    finally:
        oa.clear_script()
    c = res["counts"]
    errors = {k: v for k, v in c.items() if k.startswith("error:")}
    assert c["fans"] >= 1 and c["fans_incomplete"] == c["fans"] and c["fan_streams"] == 2 * c["fans"], c
    assert errors == {"error:stream_broken:timeout": c["fan_streams"]}, c
    assert c["warmup"] >= 2 and c["started"] == c["fan_streams"], c   # a warm-up fan: in no count but `warmup`
    assert "fan" not in res["table"] or not res["table"]["fan"].get("count"), res["table"]
