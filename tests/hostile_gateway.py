"""Test equipment: a "gateway" that misbehaves in one chosen way, at the HTTP level, for every
request (the hostile-gateway zoo). Run: python hostile_gateway.py MODE; prints `READY {"port": N}`.

Against each mode every lane of the harness must end within its deadlines with FAIL or ERROR
carrying the reason, and still write its report (tests/test_hostile_gateways.py)."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import sys

MODES = ("silent", "headers_then_silence", "streams_forever", "trickle", "random_bytes", "html", "truncated_json",
         "error_200", "huge_content_length", "sse_without_newlines", "invalid_utf8", "reset")


def head(status: str, ctype: str, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n{extra}Connection: close\r\n\r\n".encode()


async def answer(mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")   # the request head; a body, if any, is left unread
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        writer.close()
        return
    w = writer.write
    if mode == "silent":
        await asyncio.sleep(3600)
    elif mode == "headers_then_silence":
        w(head("200 OK", "text/event-stream", "Transfer-Encoding: chunked\r\n"))
        await writer.drain()
        await asyncio.sleep(3600)
    elif mode == "streams_forever":
        w(head("200 OK", "text/event-stream"))
        while True:
            chunk = {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "a"}}]}
            w(f"data: {json.dumps(chunk)}\n\n".encode())
            await writer.drain()
            await asyncio.sleep(0.05)
    elif mode == "trickle":   # a byte at a time, each well inside any read timeout
        w(head("200 OK", "application/json", "Content-Length: 100000\r\n"))
        while True:
            w(b" ")
            await writer.drain()
            await asyncio.sleep(0.5)
    elif mode == "random_bytes":
        w(os.urandom(4096))
    elif mode == "html":
        body = b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"
        w(head("200 OK", "text/html", f"Content-Length: {len(body)}\r\n") + body)
    elif mode == "truncated_json":
        w(head("200 OK", "application/json", "Content-Length: 400\r\n") + b'{"id": "chatcmpl-1", "object": "chat.compl')
    elif mode == "error_200":
        body = json.dumps({"error": {"message": "upstream failed", "type": "server_error"}}).encode()
        w(head("200 OK", "application/json", f"Content-Length: {len(body)}\r\n") + body)
    elif mode == "huge_content_length":
        w(head("200 OK", "application/json", "Content-Length: 1000000000000\r\n") + b"{" + b" " * 65536)
        await writer.drain()
    elif mode == "sse_without_newlines":
        w(head("200 OK", "text/event-stream"))
        for _ in range(50):
            w(b'data: {"id": "x", "choices": [{"index": 0, "delta": {"content": "a"}}]}')
    elif mode == "invalid_utf8":
        body = b'{"id": "\xff\xfe\xfd", "object": "chat.completion", "choices": [{"message": {"content": "\xc3\x28"}}]}'
        w(head("200 OK", "application/json", f"Content-Length: {len(body)}\r\n") + body)
    elif mode == "reset":
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # close = RST
    try:
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main(mode: str) -> None:
    server = await asyncio.start_server(lambda r, w: answer(mode, r, w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print("READY " + json.dumps({"port": port}), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    assert sys.argv[1] in MODES, sys.argv[1]
    asyncio.run(main(sys.argv[1]))
