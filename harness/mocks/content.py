"""Deterministic answers: the same prompt to the same model always yields the same tokens.

Content is derived from the prompt with the harness tag removed, so two requests that differ only
in their tag (one streamed, one not) get the same text, which is what lets a check compare them.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# A tag the harness puts in a prompt so each check's scripts and journal entries are its own.
TAG_RE = re.compile(r"\[h:([A-Za-z0-9_.-]{1,64})\]")

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu amber basil "
    "cedar dune ember fern garnet harbor iris jade kelp lotus maple nectar onyx pearl quartz "
    "river sage thistle umber violet willow yarrow zephyr acorn birch clover dahlia elm fig "
    "ginger hazel ivy juniper"
).split()

DEFAULT_TOKENS = 12


def find_tag(raw: str) -> str | None:
    m = TAG_RE.search(raw)
    return m.group(1) if m else None


def strip_tags(text: str) -> str:
    return TAG_RE.sub("", text).strip()


def _seed(model: str, prompt: str) -> bytes:
    return hashlib.sha256(f"{model}\x00{strip_tags(prompt)}".encode()).digest()


def text_tokens(model: str, prompt: str, n: int = DEFAULT_TOKENS) -> list[str]:
    """n word tokens; each after the first carries its leading space, as real tokenizers do."""
    seed = _seed(model, prompt)
    words = [WORDS[(seed[i % len(seed)] + 7 * i) % len(WORDS)] for i in range(n)]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def json_tokens(model: str, prompt: str, n: int = DEFAULT_TOKENS) -> list[str]:
    """A JSON object answer (JSON mode), cut into small fragments like a tokenizer would."""
    words = [t.strip() for t in text_tokens(model, prompt, n)]
    doc = json.dumps({"answer": " ".join(words), "count": len(words)})
    return [doc[i : i + 4] for i in range(0, len(doc), 4)]


def count_words(text: str) -> int:
    return len(text.split())


def prompt_text_openai(body: dict[str, Any]) -> str:
    """All the text of a chat completions request, in order, for seeding and token counting."""
    parts: list[str] = []
    for msg in body.get("messages") or []:
        if isinstance(msg, dict):
            parts.append(_content_text(msg.get("content")))
    return "\n".join(parts)


def prompt_text_anthropic(body: dict[str, Any]) -> str:
    parts = [_content_text(body.get("system"))]
    for msg in body.get("messages") or []:
        if isinstance(msg, dict):
            parts.append(_content_text(msg.get("content")))
    return "\n".join(p for p in parts if p)


def prompt_text_responses(body: dict[str, Any]) -> str:
    parts = [_content_text(body.get("instructions"))]
    inp = body.get("input")
    if isinstance(inp, str):
        parts.append(inp)
    elif isinstance(inp, list):
        for item in inp:
            if isinstance(item, dict):
                parts.append(_content_text(item.get("content")))
    return "\n".join(p for p in parts if p)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return str(content)


def sample(schema: Any) -> Any:
    """A deterministic value that satisfies a JSON schema's type (objects by their properties): what
    a model constrained to the schema would produce, for tool arguments and structured outputs."""
    if not isinstance(schema, dict):
        return "alpha"
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):   # ["string", "null"]: the first non-null type
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind).lower()     # Gemini spells types in capitals (STRING, OBJECT)
    if kind == "object":
        return {name: sample(spec) for name, spec in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [sample(schema.get("items"))] if schema.get("minItems") else []
    return {"string": "alpha", "integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, "alpha")


def tool_arguments(tool: dict[str, Any]) -> str:
    """Deterministic arguments that satisfy the tool's JSON schema properties (by type)."""
    fn = tool.get("function") or tool  # OpenAI nests under "function"; Anthropic does not
    schema = fn.get("parameters") or fn.get("input_schema") or {}
    return json.dumps(sample({"type": "object", "properties": schema.get("properties") or {}}))


def embedding(model: str, text: str, dims: int) -> list[float]:
    """A deterministic unit-free vector for (model, text): the same input always embeds the same."""
    out: list[float] = []
    block = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{model}\x00{strip_tags(text)}\x00{block}".encode()).digest()
        out += [round((b - 127.5) / 127.5, 6) for b in digest]
        block += 1
    return out[:dims]
