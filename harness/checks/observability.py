"""Observability a caller can see: a request id on every response (plain, streamed, error), echoed
when the caller sent one, and passed on to the provider when promised."""
from __future__ import annotations

from typing import Literal

from harness.checks.base import CheckContext, Unsupported, Verdict, check, judge, require_answer
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
