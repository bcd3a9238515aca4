"""One cell of the smoke matrix: a real request for one route, in one client protocol, streamed
or not, checked end to end: the client got a well-formed answer in its own protocol, the right
provider got the request in *its* protocol (journal) for the right upstream model, the text the
client read is the text the provider wrote, and the streamed and plain answers agree. A tool cell
(cases.CASES) sends tools instead and checks the calls: names, arguments, ids and indexes, the finish
reason and the usage, as the provider wrote them."""
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
from harness.oracles.common import get, list_or_empty
from harness.smoke import tools as tc
from harness.smoke.cases import CAN_SAY, CASES

# The path a provider of each kind must have been called on: the gateway spoke its protocol.
PROVIDER_ROUTES = {"openai": re.compile(r"/(chat/completions|responses)$"), "anthropic": re.compile(r"^/v1/messages$"),
                   "gemini": re.compile(r"/models/[^/]+:(generateContent|streamGenerateContent)$"),
                   "ollama": re.compile(r"^/api/chat$")}
PROMPT = CASES["text"].prompt


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


def send(gw: Gateway, protocol: str, model: str, prompt: str, stream: bool,
         tools: tuple[dict[str, Any], ...] = ()) -> Exchange:
    """With `tools`: the request offers them (in the protocol's shape), a Responses input is a list
    of messages (a string input is the text cells' business), and a chat stream asks for usage."""
    if protocol == "openai_chat":
        body: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
        headers = None
    elif protocol == "openai_responses":
        body, headers = {"model": model, "input": prompt, "max_output_tokens": 64}, None
        if tools:
            body["input"] = [{"role": "user", "content": prompt}]
    else:
        body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
        headers = {"anthropic-version": "2023-06-01"}
    if tools:
        body["tools"] = tc.definitions(protocol, tools)
    if stream:
        body["stream"] = True
        if tools and protocol == "openai_chat":
            body["stream_options"] = {"include_usage": True}
    return gw.client.request("POST", gw.path(protocol, model), body, headers={**(headers or {}), **gw.headers(model)},
                             stream=stream)


def read_answer(protocol: str, stream: bool, ex: Exchange, needs_text: bool = True,
                usage_asked: bool = False) -> tuple[Optional[str], list[str]]:
    """The answer's text and what is wrong with its shape, in the client's protocol (`needs_text`:
    an answer of tool calls only has none; `usage_asked`: a chat stream with include_usage)."""
    if stream:
        if "text/event-stream" not in ex.content_type:
            return None, [f"a stream was asked for, the answer is {ex.content_type or 'without a content type'}"]
        if protocol == "openai_chat":
            s = os_.parse(ex.events)
            if not usage_asked:
                return os_.text(s), os_.well_formed(s) + os_.ends_with_done(s) + os_.single_finish_reason_last(s)
            # include_usage: usage once, in a last chunk of its own with choices []; the finish reason
            # last among the chunks before it. A usage chunk with choices but no finish reason is one
            # deviation with one reason (usage_once_final's, as CM-10.2.7), not a misplaced finish too.
            last = s.chunks[-1] if s.chunks else {}
            trailing = last.get("usage") is not None and not any(
                get(ch, "finish_reason") is not None for ch in list_or_empty(last.get("choices")))
            before = os_.Stream(s.chunks[:-1] if trailing else s.chunks, s.done, s.after_done, s.bad)
            return os_.text(s), (os_.well_formed(s) + os_.ends_with_done(s) + os_.single_finish_reason_last(before)
                                 + os_.usage_once_final(s))
        if protocol == "openai_responses":
            return ro.stream_text(ex.events), ro.stream_events(ex.events)
        return ao.stream_text(ex.events), ao.event_order(ex.events)
    obj = ex.json()
    if obj is None:
        return None, ["the answer is not JSON"]
    if protocol == "openai_chat":
        return oc.text(obj), oc.full_shape(obj)
    if protocol == "openai_responses":
        return ro.text(obj), ro.response_shape(obj, needs_text)
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
                                  "answer_text", "answer_calls", "usage", "route_can")}


def run_cell(gw: Gateway, row: Any, protocol: str, stream: bool, case: str = "text") -> dict[str, Any]:
    kind = CASES[case]
    tag = "smoke-" + secrets.token_hex(6)
    ex = send(gw, protocol, row.name, kind.prompt.format(tag=tag), stream, kind.tools)
    evidence: dict[str, Any] = {"exchange": {**ex.evidence(1500), "events": len(ex.events)}}
    text: Optional[str] = None
    read: Optional[tc.Read] = None
    problems: list[str] = []
    if ex.error or ex.status != 200:
        problems.append(f"HTTP {ex.status}: {ex.error or ex.body[:200].decode('utf-8', 'replace')}")
    else:
        text, shape = read_answer(protocol, stream, ex, needs_text=not kind.tools,
                                  usage_asked=isinstance(ex.request_body, dict) and "stream_options" in ex.request_body)
        problems += [f"{protocol} answer: {v}" for v in shape[:3]]
        if kind.tools:
            read = tc.read(protocol, stream, ex)
            evidence["client_calls"] = tc.calls_evidence(read)
            evidence["finish"], evidence["usage"] = read.finish, read.usage
            if stream:   # the streamed events as the client parsed them: a body is not kept for streams
                evidence["exchange"]["stream"] = [e.data[:300] for e in ex.events[:80]]
        elif not text:
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
        lacking = [c for c in CAN_SAY if c in kind.needs - set(e.get("route_can") or [])]
        if lacking and e.get("served", True):
            # The gateway chose a provider route that cannot carry what the cell asks (Ollama's
            # /api/generate has no tools): the cell cannot be judged there; the text cells judge the route.
            return cell(row, protocol, stream, case, "UNSUPPORTED", (
                f"the gateway sent the request to {e['method']} {e['path']} on {row.provider} ({row.kind}), a route "
                f"of that API without {' or '.join(CAN_SAY[c] for c in lacking)}: the cell cannot be judged through it"),
                {**evidence, "also": problems, "upstream": {n: [_entry_evidence(x) for x in es] for n, es in seen.items()}})
        if not PROVIDER_ROUTES[row.kind].search(e["path"]):
            problems.append(f"{row.provider} ({row.kind}) was called on {e['path']}: not its protocol")
        elif e["status"] != 200:
            problems.append(f"{row.provider} rejected the translated request: HTTP {e['status']}")
        elif e.get("answer_text") is None:
            problems.append(f"{row.provider} did not answer in its {row.kind} protocol (a scripted answer in another shape)")
        elif kind.tools:
            if read is not None:
                problems += tc.judge(protocol, read, e, row.provider, "parallel_tools" in kind.needs)
        elif text and text != e["answer_text"]:
            problems.append(f"the client read {text[:60]!r}, the provider wrote {e['answer_text'][:60]!r}")
    evidence["text"] = text
    evidence["problems"] = problems
    if kind.tools:
        evidence["provider_calls"] = mine[-1].get("answer_calls") if mine else None
    status = "FAIL" if problems else "PASS"
    if problems:
        reason = "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
    elif kind.tools:
        calls = mine[-1]["answer_calls"]
        reason = (f"{row.provider} ({row.kind}) wrote {len(calls)} tool call(s) ({', '.join(c['name'] for c in calls)}); "
                  f"the client read them as {protocol}{' (streamed)' if stream else ''}: same names and arguments, "
                  f"distinct ids and indexes, {tc.FINISH[protocol][0]} {tc.FINISH[protocol][1]!r}, the provider's usage")
    else:
        reason = (f"{row.provider} ({row.kind}) got a valid {row.kind} request for {row.upstream}; "
                  f"the client read its answer as {protocol}{' (streamed)' if stream else ''}")
    # No case prefix on the reason: a tool cell and a text cell red for one deviation are one cause in the report.
    return cell(row, protocol, stream, case, status, reason, evidence)


def cell(row: Any, protocol: str, stream: bool, case: str, status: str, reason: str,
         evidence: dict[str, Any]) -> dict[str, Any]:
    return {"row": row.name, "protocol": protocol, "stream": stream, "case": case, "status": status,
            "reason": reason, "evidence": evidence}


def agree(plain: dict[str, Any], streamed: dict[str, Any]) -> None:
    """Streaming and plain agree: the same prompt gives the same text both ways (the mock's
    answers depend on model and prompt only), or the same tool calls (name and arguments). A
    disagreement turns the streamed cell red."""
    if not plain["status"] == streamed["status"] == "PASS":
        return
    case = streamed.get("case", "text")
    if case == "text":
        a, b = plain["evidence"].get("text"), streamed["evidence"].get("text")
        if a != b:
            streamed["status"] = "FAIL"
            streamed["reason"] = f"streamed text {b[:60]!r} differs from the plain answer {a[:60]!r}"
        return
    a, b = plain["evidence"].get("provider_calls"), streamed["evidence"].get("provider_calls")
    if a != b:
        streamed["status"] = "FAIL"
        streamed["reason"] = f"streamed tool calls {b} differ from the plain answer's {a}"


def not_offered(row: Any, protocol: str, stream: bool, why: str, case: str = "text") -> dict[str, Any]:
    return cell(row, protocol, stream, case, "NOT OFFERED", why, {})
