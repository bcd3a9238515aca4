"""The harness's client: a hang, a cut, garbage all become an error with a reason, within the deadline.

The mock provider serves as a scriptable HTTP peer here; this tests our client, not a gateway.
"""
from __future__ import annotations

import secrets
import time

import pytest

from harness.client.http import GatewayClient
from timing import bound


def body(t):
    return {"model": "m", "messages": [{"role": "user", "content": f"x [h:{t}]"}]}


def test_hang_before_headers_hits_the_read_deadline(mocks):
    t = "c" + secrets.token_hex(4)
    mocks["oa"].script(tag=t, headers_delay_ms=10_000, times=1)
    client = GatewayClient(mocks["urls"]["oa"], None, None, read_s=0.5, request_s=5)
    t0 = time.monotonic()
    ex = client.request("POST", "/v1/chat/completions", body(t))
    assert time.monotonic() - t0 < 2 and ex.error and "timed out" in ex.error


def test_a_deadline_shorter_than_the_read_timeout_holds_before_the_headers_too(mocks):
    # A 2 s probe (the chaos lane's liveness probe) of a route that never sends its headers must end
    # at 2 s, not at the client's 20 s read timeout: the total deadline used to start at the headers.
    t = "c" + secrets.token_hex(4)
    mocks["oa"].script(tag=t, headers_delay_ms=10_000, times=1)
    client = GatewayClient(mocks["urls"]["oa"], None, None, read_s=20, request_s=30)
    t0 = time.monotonic()
    ex = client.request("POST", "/v1/chat/completions", body(t), deadline_s=1)
    assert time.monotonic() - t0 < bound(1) and ex.error and "timed out" in ex.error, ex.error


def test_trickling_stream_hits_the_total_deadline(mocks):
    t = "c" + secrets.token_hex(4)
    mocks["oa"].script(tag=t, token_delay_ms=200, tokens=100, times=1)
    client = GatewayClient(mocks["urls"]["oa"], None, None, read_s=5, stream_s=1)
    t0 = time.monotonic()
    ex = client.request("POST", "/v1/chat/completions", {**body(t), "stream": True}, stream=True)
    assert time.monotonic() - t0 < 2.5 and ex.error and "deadline" in ex.error and ex.events


def test_cut_stream_is_an_error_with_the_events_so_far(mocks):
    t = "c" + secrets.token_hex(4)
    mocks["oa"].script(tag=t, cut_after_chunks=4, times=1)
    client = GatewayClient(mocks["urls"]["oa"], None, None)
    ex = client.request("POST", "/v1/chat/completions", {**body(t), "stream": True}, stream=True)
    assert ex.error and "connection broken" in ex.error and len(ex.events) == 4


def test_connection_refused_is_an_error(mocks):
    from harness.world.processes import RefusingPort
    dead = RefusingPort()
    try:
        client = GatewayClient(f"http://127.0.0.1:{dead.port}", None, None, connect_s=1)
        ex = client.request("GET", "/v1/models")
    finally:
        dead.close()
    assert ex.error and ex.status is None


def test_never_retries(mocks):
    t = "c" + secrets.token_hex(4)
    mocks["oa"].script(tag=t, status=503, times=5)
    client = GatewayClient(mocks["urls"]["oa"], "Authorization", "Bearer sk-test-abcdefgh")
    ex = client.request("POST", "/v1/chat/completions", body(t))
    assert ex.status == 503 and len(mocks["oa"].journal(tag=t)) == 1


@pytest.mark.parametrize("mode", ["trickle", "streams_forever", "headers_then_silence"])
def test_the_deadline_is_total_whatever_the_gateway_trickles(tmp_path, mode):
    """A byte every 0.5 s never trips a 5 s read timeout; an endless stream never ends by itself:
    the exchange still ends at its 1.5 s deadline, with that as the reason."""
    import sys as _sys
    from pathlib import Path as _Path

    from harness.world.processes import spawn_ready
    here = _Path(__file__).resolve().parent
    child, info = spawn_ready("hostile", [_sys.executable, str(here / "hostile_gateway.py"), mode], tmp_path / "h.log", 20)
    try:
        client = GatewayClient(f"http://127.0.0.1:{info['port']}", None, None, read_s=5, request_s=1.5, stream_s=1.5)
        ex = client.request("POST", "/v1/chat/completions", {"model": "m"}, stream=mode != "trickle")
        client.close()
    finally:
        child.stop(grace_s=2)
    # headers then silence: the 5 s read timeout would be the first to fire without the watchdog
    assert ex.elapsed_s < bound(1.5) < 5, ex.elapsed_s
    assert ex.error and "deadline of 1.5s passed while the answer was still arriving" in ex.error, ex.error
