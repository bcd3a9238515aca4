"""A provider's 400 that names its cause: context_length_exceeded and content_policy_violation, with
OpenAI's real error bodies. Without a fallback made for them the caller gets the error with its code
intact (clients shorten the prompt on context_length_exceeded), once: retrying the same prompt is
pointless. With one (LiteLLM's context_window_fallbacks, content_policy_fallbacks) the request goes
down that chain, not the generic one."""
from __future__ import annotations

from typing import Any, Literal

from harness.checks.base import SAFE, CheckContext, Deviation, Unsupported, Verdict, check, judge
from harness.checks.failover import answer_problems, trail
from harness.oracles import errors as eo
from harness.oracles.common import get

Code = Literal["context_length_exceeded", "content_policy_violation"]

# What OpenAI answers (https://platform.openai.com/docs/guides/error-codes): status 400, these bodies.
BODIES: dict[str, dict[str, Any]] = {
    "context_length_exceeded": {"error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                   "131072 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}},
    "content_policy_violation": {"error": {
        "message": "Your request was rejected as a result of our safety system. Your prompt may contain text "
                   "that is not allowed by our safety system.",
        "type": "invalid_request_error", "param": None, "code": "content_policy_violation"}},
}


def _fallbacks(ctx: CheckContext, code: str) -> dict[str, list[str]]:
    p = ctx.cfg.promises
    return p.context_window_fallbacks if code == "context_length_exceeded" else p.content_policy_fallbacks


def _fail(ctx: CheckContext, model: str, tag: str, code: str) -> None:
    ctx.provider_of(model).script(tag=tag, status=400, body=BODIES[code])


def _error_code(ex) -> Any:
    return get(ex.json(), "error", "code")


@check("provider_errors.passed_through")
def passed_through(ctx: CheckContext, code: Code, stream: bool = False) -> Verdict:
    """A model with no fallback: the caller gets HTTP 400 with an OpenAI error object whose code is
    the provider's (streamed: before any stream starts), and the provider was asked once."""
    model, tag = ctx.role("no_fallback"), ctx.tag()
    _fail(ctx, model, tag, code)
    ex = ctx.chat(model, tag, stream=stream)
    entries = ctx.attempts(tag, [model])
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries)}
    violations = []
    if ex.error or ex.status != 400:
        violations.append(f"the caller got {ex.error or f'HTTP {ex.status}'}, expected the provider's 400")
    else:
        violations += eo.openai_error_object(ex.json())
        if _error_code(ex) != code:
            violations.append(f"error.code is {_error_code(ex)!r}, the provider said {code!r} (a client that "
                              "acts on the code cannot tell)")
    if len(entries) != 1:
        violations.append(f"the provider was asked {len(entries)} times for one request: {trail(entries)}")
    return judge(violations, evidence, f"HTTP 400 with code {code}, one attempt")


@check("provider_errors.own_fallback")
def own_fallback(ctx: CheckContext, code: Code, stream: bool = False) -> Verdict:
    """The model has a chain made for this error: the request goes down it (the primary asked once, the
    chain's first model answers, the generic chain untouched) and the caller gets one clean answer.
    Not taken but a clean 400 with the code: SAFE (broken, but the client can act on it)."""
    chains = _fallbacks(ctx, code)
    if not chains:
        what = "context_window_fallbacks" if code == "context_length_exceeded" else "content_policy_fallbacks"
        raise Unsupported(f"the gateway promises no fallback for {code} (promises.{what})")
    model = sorted(chains)[0]
    own = chains[model]
    generic = ctx.cfg.promises.fallbacks.get(model, [])
    for m in [model, *own, *generic]:
        ctx._use(m)
    tag = ctx.tag()
    _fail(ctx, model, tag, code)
    ex = ctx.chat(model, tag, stream=stream)
    entries = ctx.attempts(tag, [model, *own, *generic])
    by = [e["provider"] for e in entries]
    primary, target = ctx.provider_of(model).name, ctx.provider_of(own[0]).name
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries), "own_chain": own, "generic_chain": generic}
    if target not in by:
        wrong = sorted({ctx.provider_of(g).name for g in generic} & set(by))
        if wrong:
            raise Deviation(f"on {code} the gateway went down the generic chain ({generic}), not the one made for "
                            f"it ({own})", evidence)
        if not ex.error and ex.status == 400 and not eo.openai_error_object(ex.json()) and _error_code(ex) == code:
            raise Deviation(f"the promised {code} fallback to {own[0]!r} did not happen, but the caller got a "
                            f"clean 400 with code {code}", evidence, status=SAFE)
        raise Deviation(f"the promised {code} fallback to {own[0]!r} did not happen: "
                        f"{ex.error or f'HTTP {ex.status}'}", evidence)
    violations = answer_problems(ex, entries, stream)
    if by.count(primary) != 1 or by[0] != primary:
        violations.append(f"the primary should be asked once, first; attempts went {by}")
    return judge(violations, evidence, f"on {code} the request went to {own[0]!r}, which answered")
