"""One cell of the smoke matrix: a real request for one route, in one client protocol, streamed
or not, checked end to end: the client got a well-formed answer in its own protocol, the right
provider got the request in *its* protocol (journal) for the right upstream model, the text the
client read is the text the provider wrote, and the streamed and plain answers agree."""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Optional

from harness.client.control import ProviderControl
from harness.client.http import Exchange, GatewayClient
from harness.oracles import anthropic as ao
from harness.oracles import openai_chat as oc
from harness.oracles import openai_stream as os_
from harness.oracles import responses as ro

# The path a provider of each kind must have been called on: the gateway spoke its protocol.
PROVIDER_ROUTES = {"openai": re.compile(r"/(chat/completions|responses)$"), "anthropic": re.compile(r"^/v1/messages$"),
                   "gemini": re.compile(r"/models/[^/]+:(generateContent|streamGenerateContent)$"),
                   "ollama": re.compile(r"^/api/chat$")}
PROMPT = "Say something short for the route check. [h:{tag}]"


ROUTE_KIND = {"openai_chat": "chat", "openai_responses": "responses", "anthropic_messages": "messages",
              "models": "models"}


@dataclass
class Gateway:
    client: GatewayClient
    paths: dict[str, str]                  # protocol -> gateway path
    controls: dict[str, ProviderControl]   # provider name -> its mock's control API
    routes: Any = None                     # harness.world.routes.Routes: per-model paths and headers

    def path(self, protocol: str, model: Optional[str] = None) -> str:
        if self.routes is not None:
            return self.routes.path(ROUTE_KIND[protocol], model)
        return self.paths[protocol]

    def headers(self, model: Optional[str]) -> dict[str, str]:
        return self.routes.model_headers(model) if self.routes is not None else {}


def send(gw: Gateway, protocol: str, model: str, prompt: str, stream: bool) -> Exchange:
    if protocol == "openai_chat":
        body: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
        headers = None
    elif protocol == "openai_responses":
        body, headers = {"model": model, "input": prompt, "max_output_tokens": 64}, None
    else:
        body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
        headers = {"anthropic-version": "2023-06-01"}
    if stream:
        body["stream"] = True
    return gw.client.request("POST", gw.path(protocol, model), body, headers={**(headers or {}), **gw.headers(model)},
                             stream=stream)


def read_answer(protocol: str, stream: bool, ex: Exchange) -> tuple[Optional[str], list[str]]:
    """The answer's text and what is wrong with its shape, in the client's protocol."""
    if stream:
        if "text/event-stream" not in ex.content_type:
            return None, [f"a stream was asked for, the answer is {ex.content_type or 'without a content type'}"]
        if protocol == "openai_chat":
            s = os_.parse(ex.events)
            return os_.text(s), os_.well_formed(s) + os_.ends_with_done(s) + os_.single_finish_reason_last(s)
        if protocol == "openai_responses":
            return ro.stream_text(ex.events), ro.stream_events(ex.events)
        return ao.stream_text(ex.events), ao.event_order(ex.events)
    obj = ex.json()
    if obj is None:
        return None, ["the answer is not JSON"]
    if protocol == "openai_chat":
        return oc.text(obj), oc.full_shape(obj)
    if protocol == "openai_responses":
        return ro.text(obj), ro.response_shape(obj)
    return ao.text(obj), ao.message_shape(obj)


def journal_for(gw: Gateway, tag: str, wait_s: float = 3.0) -> dict[str, list[dict[str, Any]]]:
    """Every provider's entries for this tag; waits briefly for the one the gateway reached."""
    deadline = time.monotonic() + wait_s
    while True:
        found = {name: c.journal(tag=tag) for name, c in gw.controls.items()}
        found = {k: v for k, v in found.items() if v}
        if (found and all(e["t_done"] for es in found.values() for e in es)) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _entry_evidence(e: dict[str, Any]) -> dict[str, Any]:
    return {k: e.get(k) for k in ("provider", "method", "path", "model", "stream", "status", "completed", "body",
                                  "answer_text")}


def run_cell(gw: Gateway, row: Any, protocol: str, stream: bool) -> dict[str, Any]:
    tag = "smoke-" + secrets.token_hex(6)
    ex = send(gw, protocol, row.name, PROMPT.format(tag=tag), stream)
    evidence: dict[str, Any] = {"exchange": {**ex.evidence(1500), "events": len(ex.events)}}
    text: Optional[str] = None
    problems: list[str] = []
    if ex.error or ex.status != 200:
        problems.append(f"HTTP {ex.status}: {ex.error or ex.body[:200].decode('utf-8', 'replace')}")
    else:
        text, shape = read_answer(protocol, stream, ex)
        problems += [f"{protocol} answer: {v}" for v in shape[:3]]
        if not text:
            problems.append("the answer carried no text (a 200 with nothing in it hides a broken route)")
    seen = journal_for(gw, tag)
    evidence["upstream"] = {name: [_entry_evidence(e) for e in es] for name, es in seen.items()}
    wrong = sorted(set(seen) - {row.provider})
    if wrong:
        problems.append(f"the request reached {', '.join(wrong)}, not {row.provider}")
    mine = seen.get(row.provider, [])
    if not mine:
        problems.append(f"{row.provider} never got the request")
    else:
        e = mine[-1]
        if e["model"] != row.upstream:
            problems.append(f"{row.provider} was asked for model {e['model']!r}, not {row.upstream!r}")
        if not PROVIDER_ROUTES[row.kind].search(e["path"]):
            problems.append(f"{row.provider} ({row.kind}) was called on {e['path']}: not its protocol")
        elif e["status"] != 200:
            problems.append(f"{row.provider} rejected the translated request: HTTP {e['status']}")
        elif e.get("answer_text") is None:
            problems.append(f"{row.provider} did not answer in its {row.kind} protocol (a scripted answer in another shape)")
        elif text and text != e["answer_text"]:
            problems.append(f"the client read {text[:60]!r}, the provider wrote {e['answer_text'][:60]!r}")
    evidence["text"] = text
    status = "FAIL" if problems else "PASS"
    reason = "; ".join(problems[:3]) if problems else (
        f"{row.provider} ({row.kind}) got a valid {row.kind} request for {row.upstream}; "
        f"the client read its answer as {protocol}{' (streamed)' if stream else ''}")
    return {"row": row.name, "protocol": protocol, "stream": stream, "status": status, "reason": reason,
            "evidence": evidence}


def agree(plain: dict[str, Any], streamed: dict[str, Any]) -> None:
    """Streaming and plain agree: the same prompt gives the same text both ways (the mock's
    answers depend on model and prompt only). A disagreement turns the streamed cell red."""
    a, b = plain["evidence"].get("text"), streamed["evidence"].get("text")
    if plain["status"] == streamed["status"] == "PASS" and a != b:
        streamed["status"] = "FAIL"
        streamed["reason"] = f"streamed text {b[:60]!r} differs from the plain answer {a[:60]!r}"


def not_offered(row: Any, protocol: str, stream: bool, why: str) -> dict[str, Any]:
    return {"row": row.name, "protocol": protocol, "stream": stream, "status": "NOT OFFERED", "reason": why,
            "evidence": {}}
