"""OpenAI-style Realtime websocket (/v1/realtime): the upstream of a gateway's websocket route.

One session per connection: `session.created` on connect; each `response.create` streams a
response (response.created ... output_text.delta ... response.done). The script's token delays
apply, and the journal records each response, including whether the gateway went away before it
was complete (a drop that must cancel the upstream stream).
"""
from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from aiohttp import WSMsgType, web

from harness.mocks import content
from harness.mocks.journal import Journal
from harness.mocks.script import Script


async def session(request: web.Request, journal: Journal, script: Script) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=None)
    await ws.prepare(request)
    model = request.query.get("model", "")
    await ws.send_json({"type": "session.created", "event_id": "evt_" + secrets.token_hex(6),
                        "session": {"id": "sess_" + secrets.token_hex(8), "model": model, "object": "realtime.session"}})
    running: set[asyncio.Task] = set()
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                event = json.loads(msg.data)
            except ValueError:
                await ws.send_json({"type": "error", "error": {"type": "invalid_request_error", "message": "not JSON"}})
                continue
            if isinstance(event, dict) and event.get("type") == "response.create":
                task = asyncio.ensure_future(_respond(ws, request, event, model, journal, script))
                running.add(task)
                task.add_done_callback(running.discard)
    finally:
        for task in running:
            task.cancel()
    return ws


async def _respond(ws: web.WebSocketResponse, request: web.Request, event: dict[str, Any], model: str,
                   journal: Journal, script: Script) -> None:
    text = json.dumps(event)
    tag = content.find_tag(text)
    entry = journal.record("WS", request.path, request.headers.items(), event, tag, model, True)
    rule = script.take(tag, request.path, model)
    instructions = str((event.get("response") or {}).get("instructions") or "")
    tokens = content.text_tokens(model, instructions, rule.tokens if rule and rule.tokens else content.DEFAULT_TOKENS)
    entry.answer_text = "".join(tokens)
    rid, iid = "resp_" + secrets.token_hex(8), "item_" + secrets.token_hex(8)
    entry.status = 101
    try:
        await ws.send_json({"type": "response.created", "response": {"id": rid, "status": "in_progress", "output": []}})
        await ws.send_json({"type": "response.output_item.added", "response_id": rid, "output_index": 0,
                            "item": {"id": iid, "type": "message", "role": "assistant", "content": []}})
        for i, tok in enumerate(tokens):
            delay = (rule.first_token_delay_ms if i == 0 else rule.token_delay_ms) if rule else 0
            if delay:
                await asyncio.sleep(delay / 1000)
            if ws.closed:
                raise ConnectionResetError("the gateway closed the websocket")
            await ws.send_json({"type": "response.output_text.delta", "response_id": rid, "item_id": iid,
                                "output_index": 0, "content_index": 0, "delta": tok})
            entry.chunks_sent += 1
        await ws.send_json({"type": "response.output_text.done", "response_id": rid, "item_id": iid, "text": entry.answer_text})
        await ws.send_json({"type": "response.done", "response": {"id": rid, "status": "completed",
                            "usage": {"input_tokens": 5, "output_tokens": len(tokens), "total_tokens": 5 + len(tokens)}}})
        entry.completed = True
    except (ConnectionResetError, ConnectionError, RuntimeError, asyncio.CancelledError):
        entry.disconnected = True
    finally:
        entry.t_done = time.time()
