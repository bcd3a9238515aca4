"""The fault script of one mock provider: rules the harness sets, consumed by matching requests.

A rule applies to requests carrying its tag (or to every request when it has none), on a path
if given, for its next `times` requests (forever when unset). The first matching rule wins.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

_ids = itertools.count(1)


@dataclass
class Rule:
    tag: str | None = None
    path: str | None = None
    model: str | None = None
    times: int | None = None           # how many requests it applies to; None = all
    status: int | None = None          # answer with this status and `body` instead of content
    body: Any = None                   # error body (JSON or text); default: the protocol's shape
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (Retry-After...)
    headers_delay_ms: float = 0        # wait before sending status and headers
    first_token_delay_ms: float = 0    # wait after headers, before the first content chunk
    token_delay_ms: float = 0          # wait between content chunks
    latency_ms: list[float] | None = None  # [mean, jitter]: a per-request random extra header delay
    cut_after_chunks: int | None = None    # close the connection after K chunks (0 = before headers)
    omit_usage: bool = False           # answer without usage
    tokens: int | None = None          # length of the answer in tokens
    content: str | None = None         # fixed answer text instead of generated words
    stall_after_chunks: int | None = None  # after K chunks, go silent for stall_ms...
    stall_ms: float = 600_000
    close_after_stall: bool = False    # ...then close instead of carrying on
    malformed_at_chunk: int | None = None  # chunk K goes out as an event whose data is not JSON
    malformed_insert_at_chunk: int | None = None  # a malformed event goes out before chunk K, which still follows
    omit_done: bool = False            # a stream without its final `data: [DONE]` (some OpenAI-compatible servers)
    end_after_chunks: int | None = None    # after K chunks, end the stream cleanly (a proper HTTP end, mid-answer)
    for_s: float | None = None         # the rule lapses this long after it was set (a provider "down for a while")
    unserved: bool = False             # answer as a route the mock does not serve (a gap in the mock, on purpose)
    id: int = field(default_factory=lambda: next(_ids))
    set_at: float = field(default_factory=time.time)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Rule":
        known = {f.name for f in fields(cls)} - {"id", "set_at"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown script field(s): {', '.join(sorted(unknown))}")
        rule = cls(**{k: v for k, v in data.items() if k in known})
        if rule.times is not None and rule.times < 1:
            raise ValueError("times must be >= 1 or absent")
        if rule.status is not None and not 100 <= int(rule.status) <= 599:
            raise ValueError("status must be an HTTP status code")
        return rule

    def expired(self, now: float) -> bool:
        return self.for_s is not None and now - self.set_at > self.for_s

    def matches(self, tag: str | None, path: str, model: str | None) -> bool:
        return (
            (self.tag is None or self.tag == tag)
            and (self.path is None or self.path == path)
            and (self.model is None or self.model == model)
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Script:
    """Thread-safe, although the server runs one event loop: control calls and traffic interleave."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self, tag: str | None = None) -> int:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if tag is not None and r.tag != tag]
            return before - len(self._rules)

    def take(self, tag: str | None, path: str, model: str | None) -> Rule | None:
        """The rule for this request, consuming one of its uses. Tagged rules win over global ones."""
        with self._lock:
            now = time.time()
            self._rules = [r for r in self._rules if not r.expired(now)]
            candidates = [r for r in self._rules if r.matches(tag, path, model)]
            candidates.sort(key=lambda r: r.tag is None)  # stable: tagged first, then by order
            for rule in candidates:
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                return rule
            return None

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._rules]
