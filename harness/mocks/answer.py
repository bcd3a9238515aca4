"""What a mock model answers, whatever the protocol: text or tool calls, plain or in JSON mode, cut
short by a token limit or a stop sequence, with its token counts.

Protocol modules translate their request into an `Ask` and write the `Answer` in their own shape
(finish reasons, usage field names, where tool calls go), so every shape decides alike: the same
prompt to the same model gives the same words through OpenAI, Anthropic, Gemini or Ollama.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from harness.mocks import content


@dataclass
class Tool:
    name: str
    schema: dict[str, Any]          # the JSON schema of its arguments


@dataclass
class Call:
    name: str
    args: dict[str, Any]
    id: str = field(default_factory=lambda: secrets.token_hex(12))   # protocols add their prefix

    @property
    def arguments(self) -> str:
        return json.dumps(self.args)


@dataclass
class Ask:
    model: str
    prompt: str                      # every text of the request, in order (seeds the words)
    prompt_tokens: int
    tools: list[Tool] = field(default_factory=list)
    choice: str = "auto"             # auto | none | required
    forced: Optional[str] = None     # the one tool the caller insists on
    parallel: bool = True            # may call more than one tool at once
    returning: bool = False          # the last message hands back a tool result: answer in words
    json: Union[bool, dict[str, Any]] = False   # JSON mode: True (any object) or a schema to satisfy
    max_tokens: Optional[int] = None
    stop: list[str] = field(default_factory=list)


@dataclass
class Answer:
    pieces: list[str]                # the text as generated, token by token (empty for tool calls)
    calls: list[Call]
    finish: str                      # stop | length | tool_calls (each protocol renames these)
    stop_sequence: Optional[str]     # the stop sequence that ended it, if one did
    prompt_tokens: int
    completion_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def usage(self) -> dict[str, int]:
        """The usage in OpenAI's terms: what a gateway speaking chat completions should report."""
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


def choose_calls(ask: Ask) -> list[Call]:
    """The mock always uses a tool it is offered (a real model may not; a check needs a call it can
    count on), never after a tool result, one when parallel calls are off, at most two otherwise."""
    if not ask.tools or ask.choice == "none" or (ask.returning and not ask.forced):
        return []
    if ask.forced:
        tools = [t for t in ask.tools if t.name == ask.forced][:1]
    else:
        tools = ask.tools[:2] if ask.parallel else ask.tools[:1]
    return [Call(t.name, content.sample({"type": "object", "properties": (t.schema or {}).get("properties") or {}}))
            for t in tools]


def _words(ask: Ask, fixed: Optional[str], n: int) -> list[str]:
    if fixed is not None:
        return [fixed[i:i + 4] for i in range(0, len(fixed), 4)] or [""]
    if isinstance(ask.json, dict):   # structured output: an object that satisfies the schema
        doc = json.dumps(content.sample(ask.json))
        return [doc[i:i + 4] for i in range(0, len(doc), 4)]
    if ask.json:
        return content.json_tokens(ask.model, ask.prompt, n)
    return content.text_tokens(ask.model, ask.prompt, n)


def _cut_at_stop(pieces: list[str], stops: list[str]) -> tuple[list[str], Optional[str]]:
    """The pieces before the earliest stop sequence (which is not part of the answer), and it."""
    text = "".join(pieces)
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return pieces, None
    at, seq = min(hits)
    out, used = [], 0
    for p in pieces:
        if used + len(p) >= at:
            if at > used:
                out.append(p[:at - used])
            break
        out.append(p)
        used += len(p)
    return out, seq


def answer(ask: Ask, fixed: Optional[str] = None, n_tokens: int = content.DEFAULT_TOKENS) -> Answer:
    """`fixed`: the script's canned text; `n_tokens`: how long an answer in words is."""
    calls = choose_calls(ask)
    if calls:
        out = sum(len(c.arguments) // 4 + 1 for c in calls)
        return Answer([], calls, "tool_calls", None, ask.prompt_tokens, out)
    pieces = _words(ask, fixed, n_tokens)
    finish = "stop"
    if ask.max_tokens is not None and 0 < ask.max_tokens < len(pieces):
        pieces, finish = pieces[:ask.max_tokens], "length"
    pieces, seq = _cut_at_stop(pieces, ask.stop)
    if seq is not None:
        finish = "stop"
    return Answer(pieces, [], finish, seq, ask.prompt_tokens, len(pieces))


def stops(value: Any) -> list[str]:
    """`stop` as OpenAI, Anthropic and Gemini take it: a string or a list of them."""
    if isinstance(value, str):
        return [value]
    return [s for s in value if isinstance(s, str)] if isinstance(value, list) else []
