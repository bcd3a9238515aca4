"""What the gateway sent a mock provider: one entry per request, secrets masked at the door."""
from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from harness.secrets import mask_headers


@dataclass
class Entry:
    seq: int
    provider: str
    method: str
    path: str
    tag: str | None
    model: str | None
    stream: bool
    headers: dict[str, str]
    body: Any
    t_received: float = field(default_factory=time.time)   # wall clock: comparable across processes
    status: int | None = None
    t_headers: float | None = None
    t_done: float | None = None
    t_first_token: float | None = None   # when the first content chunk was written (a stream's first token)
    chunks_sent: int = 0
    completed: bool = False       # the full answer was written
    disconnected: bool = False    # the gateway went away before the answer was complete
    cut: bool = False             # the script cut the connection on purpose
    stalled: bool = False         # the script stalled the stream
    malformed: bool = False       # the script sent a malformed event
    ended_early: bool = False     # the script ended the stream cleanly before the answer was complete
    rule: int | None = None       # id of the script rule that applied
    answer_text: str | None = None    # what the provider answered (content or tool-call arguments)
    answer_calls: list[dict[str, str]] | None = None   # its tool calls in order: [{name, arguments}], None for words
    answer_usage: Any = None          # the usage it reported, in its own fields; None when omitted
    usage: Any = None                 # the same usage in OpenAI's fields (prompt/completion/total_tokens)
    finish: str | None = None         # why the answer ended: stop, length or tool_calls
    served: bool = True               # False: a route the mock does not serve (answered 404, see exchange)
    route_can: list[str] = field(default_factory=list)   # what the route offers: tools, parallel_tools, json
    # Per-hop timing for the load lane, on CLOCK_MONOTONIC (time.monotonic_ns): one clock for every
    # process of this machine, never stepped by NTP, so the generator's send and first-token times
    # and these can be subtracted from one another.
    mono_arrived_ns: int = field(default_factory=time.monotonic_ns)   # the request reached the provider
    mono_tokens_ns: list[int] = field(default_factory=list)           # each content chunk written


class Journal:
    def __init__(self, provider: str, maxlen: int = 50_000) -> None:
        self.provider = provider
        self._entries: deque[Entry] = deque(maxlen=maxlen)
        self._seq = itertools.count(1)

    def record(
        self, method: str, path: str, headers: Iterable[tuple[str, str]], body: Any,
        tag: str | None, model: str | None, stream: bool,
    ) -> Entry:
        entry = Entry(
            seq=next(self._seq), provider=self.provider, method=method, path=path, tag=tag,
            model=model, stream=stream, headers=mask_headers(headers), body=body,
        )
        self._entries.append(entry)
        return entry

    def query(self, tag: str | None = None, since_seq: int = 0, served: bool | None = None,
              since_t: float = 0.0, last: int | None = None) -> list[dict[str, Any]]:
        """`last`: only the most recent N of the matching entries."""
        found = [e for e in list(self._entries)
                 if e.seq > since_seq and (tag is None or e.tag == tag) and (served is None or e.served == served)
                 and e.t_received >= since_t]
        return [asdict(e) for e in (found[-last:] if last else found)]

    def timings(self, since_seq: int = 0) -> list[list[Any]]:
        """The load lane's per-hop view, compact (a run journals thousands of requests): per entry
        [seq, tag, path, arrived, first token written, last token written, tokens, completed], on
        CLOCK_MONOTONIC in ns; None where no token was written."""
        return [[e.seq, e.tag, e.path, e.mono_arrived_ns,
                 e.mono_tokens_ns[0] if e.mono_tokens_ns else None,
                 e.mono_tokens_ns[-1] if e.mono_tokens_ns else None, len(e.mono_tokens_ns), e.completed]
                for e in list(self._entries) if e.seq > since_seq]

    def clear(self) -> None:
        self._entries.clear()
