"""Observability a caller can see: a request id on every response (plain, streamed, error), echoed
when the caller sent one, passed on to the provider when promised, and the same id in the gateway's
own log, where an operator looks it up."""
from __future__ import annotations

import glob
import os
import re
from typing import Literal, Optional

from harness.checks.base import (CheckContext, Deviation, NotJudged, Unsupported, Verdict, check, judge, poll_until,
                                 require_answer)
from harness.client.http import Exchange
from harness.config import RequestId


def _promise(ctx: CheckContext) -> RequestId:
    rid = ctx.cfg.promises.request_id
    if rid is None:
        raise Unsupported("the gateway promises no request id header (promises.request_id)")
    return rid


@check("request_id.present")
def present(ctx: CheckContext, case: Literal["plain", "stream", "error"]) -> Verdict:
    """Two requests of the kind (a plain answer, a stream, an error): each answer carries the promised
    header, non-empty, and the two ids differ."""
    rid = _promise(ctx)
    model = ctx.model("openai")
    exs = []
    for _ in range(2):
        if case == "error":
            ex = ctx.gateway.request("POST", ctx.path("chat", model), {"model": "no-such-model-harness", "messages": [
                {"role": "user", "content": f"Say something. [h:{ctx.tag()}]"}]})
        else:
            ex = ctx.chat(model, ctx.tag(), stream=case == "stream")
        require_answer(ex)
        exs.append(ex)
    ids = [ex.headers.get(rid.header.lower()) for ex in exs]
    evidence = {"ids": ids, "statuses": [ex.status for ex in exs], "headers": exs[0].headers}
    violations = [f"answer {i + 1} (HTTP {exs[i].status}) has no {rid.header} header" for i, v in enumerate(ids) if not v]
    if not violations and ids[0] == ids[1]:
        violations.append(f"two requests got the same {rid.header}: {ids[0]!r}")
    if case == "error" and all(ex.status == 200 for ex in exs):
        violations.append("the unknown model was not refused, so no error answer was seen")
    return judge(violations, evidence, f"each {case} answer carries its own {rid.header}")


@check("request_id.echoed")
def echoed(ctx: CheckContext) -> Verdict:
    """A caller's own id in the promised header comes back unchanged."""
    rid = _promise(ctx)
    if not rid.echoes:
        raise Unsupported(f"the gateway does not promise to echo a caller's {rid.header} (promises.request_id.echoes)")
    model, tag = ctx.model("openai"), ctx.tag()
    mine = f"harness-{tag}"
    ex = ctx.gateway.request("POST", ctx.path("chat", model), {"model": model, "messages": [
        {"role": "user", "content": f"Say something. [h:{tag}]"}]}, headers={**ctx.model_headers(model), rid.header: mine})
    require_answer(ex)
    got = ex.headers.get(rid.header.lower())
    return judge([] if got == mine else [f"sent {rid.header}: {mine!r}, got back {got!r}"],
                 {"exchange": ex.evidence(), "sent": mine, "got": got}, f"{rid.header} echoed")


@check("request_id.forwarded")
def forwarded(ctx: CheckContext) -> Verdict:
    """The request id the caller got is the one the provider saw (same header)."""
    rid = _promise(ctx)
    if not rid.forwarded:
        raise Unsupported(f"the gateway does not promise to pass {rid.header} to the provider (promises.request_id.forwarded)")
    model, tag = ctx.model("openai"), ctx.tag()
    ex = ctx.chat(model, tag)
    require_answer(ex)
    got = ex.headers.get(rid.header.lower())
    upstream = [e["headers"].get(rid.header.lower()) for e in ctx.journal(model, tag)]
    return judge([] if got and upstream == [got] else [f"the caller got {rid.header}: {got!r}; the provider saw {upstream}"],
                 {"exchange": ex.evidence(), "upstream": upstream}, f"the provider saw the caller's {rid.header}")


LOG_WAIT_S = 5.0   # the id must be in the gateway's log this soon after the answer
LOG_POLL_S = 0.2
# Shorter ids are not looked up: a 4-character id matches times, statuses and counters in any log,
# so a line that holds it need not be the request's.
MIN_ID_LEN = 8


def _id_pattern(rid: str) -> "re.Pattern[str]":
    """The id as a whole token: not inside a longer id (a word character or '-' on either side),
    so a uuid's part or an id that is a prefix of another's never counts as the id."""
    return re.compile(rf"(?<![\w-]){re.escape(rid)}(?![\w-])")


class _LogTail:
    """The gateway's log files (glob patterns), read a little more at each poll: each file from where
    the last read stopped, so a long log is not read whole every LOG_POLL_S."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = patterns
        self.offsets: dict[str, int] = {}     # path -> bytes read so far (up to the last whole line)

    def new_lines(self) -> list[tuple[str, str]]:
        """(file name, line) for every whole line written since the last call."""
        out = []
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern)):
                offset = self.offsets.get(path, 0)
                try:
                    with open(path, "rb") as f:
                        if os.fstat(f.fileno()).st_size < offset:
                            offset = 0   # the file was truncated or replaced: read it again from its start
                        f.seek(offset)
                        data = f.read()
                except OSError:
                    continue
                whole = data.rfind(b"\n") + 1   # a line still being written is read at the next poll
                self.offsets[path] = offset + whole
                name = path.rsplit("/", 1)[-1]
                out += [(name, line) for line in data[:whole].decode("utf-8", "replace").splitlines()]
        return out


def _find_ids(patterns: list[str], ids: list[str], wait_s: float) -> tuple[dict[str, list[str]], float]:
    """For each id, the log lines that hold it as a token (up to five), polling until each has one
    or `wait_s` passes; and how long that took."""
    tail, found = _LogTail(patterns), {rid: [] for rid in ids}
    wanted = {rid: _id_pattern(rid) for rid in ids}

    def read() -> bool:
        for name, line in tail.new_lines():
            for rid, pattern in wanted.items():
                if len(found[rid]) < 5 and pattern.search(line):
                    found[rid].append(f"{name}: {line[:500]}")
        return all(found.values())
    return found, poll_until(read, bool, wait_s, LOG_POLL_S).waited_s


@check("request_id.logged")
def logged(ctx: CheckContext, case: Literal["error", "success"], fail_status: int = 500) -> Verdict:
    """The request ids the caller got in the promised header for two requests are in the gateway's own
    log within a few seconds, each as a whole token: for requests that failed at the provider (with
    `fail_status`), and, when every request's id is promised to be logged, for ones that succeeded.
    Two requests with one id cannot be told apart in a log: FAIL; ids too short to look up: not judged."""
    rid = _promise(ctx)
    if rid.logged is None:
        raise Unsupported(f"the gateway does not promise to write {rid.header} to its log (promises.request_id.logged)")
    if case == "success" and rid.logged == "errors":
        raise Unsupported(f"the gateway promises to log the {rid.header} of failed requests only "
                          "(promises.request_id.logged: errors)")
    if not ctx.gateway_logs:
        raise Unsupported("the harness did not start the gateway, so it has no log of it to read")
    model, tag = ctx.role("no_fallback"), ctx.tag()
    provider = ctx.provider_of(model) if case == "error" else None
    exs: list[Exchange] = []
    try:
        if provider is not None:
            provider.script(tag=tag, status=fail_status)   # every attempt, retries included
        for i in range(2):   # each asks something else: a response cache must not answer the second
            exs.append(ctx.chat(model, tag, prompt=f"Say something, number {i + 1}."))
    finally:
        if provider is not None:
            provider.clear_script(tag)   # the script holds for every request with the tag: gone with the claim
    return _judge_logged(ctx, rid, case, exs)


def _judge_logged(ctx: CheckContext, rid: RequestId, case: str, exs: list[Exchange]) -> Verdict:
    for ex in exs:
        require_answer(ex)
        if (case == "error") == (ex.status == 200):
            raise NotJudged(f"the request meant to {'fail' if case == 'error' else 'succeed'} got HTTP {ex.status}",
                            {"exchange": ex.evidence()})
    ids: list[Optional[str]] = [ex.headers.get(rid.header.lower()) for ex in exs]
    evidence = {"exchanges": [ex.evidence() for ex in exs], "ids": ids, "logs": ctx.gateway_logs}
    for ex, got in zip(exs, ids):
        if not got:
            raise Deviation(f"the answer (HTTP {ex.status}) carries no {rid.header}: the caller has nothing to quote",
                            evidence)
    if ids[0] == ids[1]:
        return judge([f"two requests got the same {rid.header} {ids[0]!r}: a log line cannot say which of them "
                      "it is about"], evidence, "")
    short = [got for got in ids if len(got) < MIN_ID_LEN]
    if short:
        raise NotJudged(f"not judged: the {rid.header} {short[0]!r} is shorter than {MIN_ID_LEN} characters, too "
                        "short to tell its log line from others", evidence)
    found, waited = _find_ids(ctx.gateway_logs, ids, LOG_WAIT_S)
    evidence.update(log_lines=found, waited_s=waited)
    return judge([f"the {rid.header} {got!r} the caller got (HTTP {ex.status}) is not in the gateway's log "
                  f"{LOG_WAIT_S:g} s later" for ex, got in zip(exs, ids) if not found[got]],
                 evidence, f"the {rid.header} of each {'failed' if case == 'error' else 'successful'} request is in "
                           "the gateway's log")
