"""Observability a caller can see: a request id on every response (plain, streamed, error), echoed
when the caller sent one, passed on to the provider when promised, and the same id in the gateway's
own log, where an operator looks it up."""
from __future__ import annotations

import glob
import time
from typing import Literal

from harness.checks.base import CheckContext, Deviation, NotJudged, Unsupported, Verdict, check, judge, require_answer
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


def _log_lines_with(patterns: list[str], needle: str) -> list[str]:
    """The lines of the gateway's log files (glob patterns) that contain `needle`, file by file."""
    found = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            try:
                text = open(path, errors="replace").read()
            except OSError:
                continue
            found += [f"{path.rsplit('/', 1)[-1]}: {line[:500]}" for line in text.splitlines() if needle in line]
    return found


@check("request_id.logged")
def logged(ctx: CheckContext, case: Literal["error", "success"], fail_status: int = 500) -> Verdict:
    """The request id the caller got in the promised header is in the gateway's own log within a few
    seconds: for a request that failed at the provider (with `fail_status`), and, when every request's
    id is promised to be logged, for one that succeeded."""
    rid = _promise(ctx)
    if rid.logged is None:
        raise Unsupported(f"the gateway does not promise to write {rid.header} to its log (promises.request_id.logged)")
    if case == "success" and rid.logged == "errors":
        raise Unsupported(f"the gateway promises to log the {rid.header} of failed requests only "
                          "(promises.request_id.logged: errors)")
    if not ctx.gateway_logs:
        raise Unsupported("the harness did not start the gateway, so it has no log of it to read")
    model, tag = ctx.role("no_fallback"), ctx.tag()
    if case == "error":
        ctx.provider_of(model).script(tag=tag, status=fail_status)   # every attempt, retries included
    ex = ctx.chat(model, tag)
    require_answer(ex)
    if (case == "error") == (ex.status == 200):
        raise NotJudged(f"the request meant to {'fail' if case == 'error' else 'succeed'} got HTTP {ex.status}",
                        {"exchange": ex.evidence()})
    got = ex.headers.get(rid.header.lower())
    if not got:
        raise Deviation(f"the answer (HTTP {ex.status}) carries no {rid.header}: the caller has nothing to quote",
                        {"exchange": ex.evidence()})
    t0, lines = time.monotonic(), []
    while True:
        lines = _log_lines_with(ctx.gateway_logs, got)
        if lines or time.monotonic() - t0 >= LOG_WAIT_S:
            break
        time.sleep(LOG_POLL_S)
    evidence = {"exchange": ex.evidence(), "id": got, "log_lines": lines[:5], "waited_s": round(time.monotonic() - t0, 3),
                "logs": ctx.gateway_logs}
    return judge([] if lines else [f"the {rid.header} {got!r} the caller got (HTTP {ex.status}) is not in the "
                                   f"gateway's log {LOG_WAIT_S:g} s later"],
                 evidence, f"the {rid.header} of a {'failed' if case == 'error' else 'successful'} request is in "
                           "the gateway's log")
