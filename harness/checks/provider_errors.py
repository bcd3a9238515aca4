"""A provider's 400 that names its cause: context_length_exceeded and content_policy_violation, with
OpenAI's real error bodies. Without a fallback made for them the caller gets the error with its code
intact (clients shorten the prompt on context_length_exceeded), once: retrying the same prompt is
pointless. With one (LiteLLM's context_window_fallbacks, content_policy_fallbacks) the request goes
down that chain, not the generic one. And a fallback whose model refuses an assistant prefill: the
caller gets a real answer or a clean error, never the prefill passed off as the reply."""
from __future__ import annotations

from typing import Any, Literal

from harness.checks.base import SAFE, CheckContext, Deviation, NotJudged, Unsupported, Verdict, check, judge
from harness.checks.failover import answer_problems, fail_primary, trail
from harness.config import OPENAI_COMPATIBLE
from harness.oracles import errors as eo
from harness.oracles import openai_chat as oc
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


# Anthropic's answer to a conversation ending with an assistant turn, from a model without prefill
# (Claude Sonnet 4.6, Opus 4.6 and later): HTTP 400, this body. An OpenAI-compatible route to such a
# model (GitHub Copilot's proxy, OpenRouter) says the same in OpenAI's error object.
PREFILL_REFUSED = ("This model does not support assistant message prefill. The conversation must end with a "
                   "user message.")
PREFILL_BODIES: dict[str, dict[str, Any]] = {
    "anthropic": {"type": "error", "error": {"type": "invalid_request_error", "message": PREFILL_REFUSED},
                  "request_id": "req_011CaA8K4i7kBdnE9ZcQcTgn"},
    **{kind: {"error": {"message": PREFILL_REFUSED, "type": "invalid_request_error", "param": None, "code": None}}
       for kind in OPENAI_COMPATIBLE},
}
PREFILL = "Here is the haiku, line by line:"


@check("provider_errors.prefill_rejected")
def prefill_rejected(ctx: CheckContext) -> Verdict:
    """The request ends with an assistant prefill (the reply is to continue it); the primary fails
    with a 503 and the first fallback's provider refuses the prefill (400, the provider's own body).
    The caller gets a real answer (a provider's text, with or without the prefill before it) or a
    clean error; never a 200 whose content is the prefill, or nothing, passed off as the reply."""
    model = ctx.role("failover")
    chain = ctx.chain(model)
    if not ctx.policy.fails_over(503):
        raise Unsupported("the gateway does not promise failover on 503")
    backup = chain[0]
    kind = ctx.cfg.provider(ctx.cfg.model(backup).provider).kind
    if kind not in PREFILL_BODIES:
        raise Unsupported(f"no known refusal of an assistant prefill for a {kind}-style provider")
    tag = ctx.tag()
    fail_primary(ctx, model, tag, 503)
    refusal: dict[str, Any] = {"tag": tag, "status": 400, "body": PREFILL_BODIES[kind]}
    if ctx.provider_of(backup).name == ctx.provider_of(model).name:
        refusal["model"] = ctx.cfg.model(backup).upstream   # one provider for both: the rule tells them apart
    ctx.provider_of(backup).script(**refusal)
    messages = [{"role": "user", "content": f"Write a haiku about the sea. [h:{tag}]"},
                {"role": "assistant", "content": PREFILL}]
    ex = ctx.chat(model, tag, messages=messages)
    entries = ctx.attempts(tag, [model, *chain])
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries), "prefill": PREFILL,
                "refusal": PREFILL_BODIES[kind]}
    backup_name = ctx.provider_of(backup).name
    if not any(e["provider"] == backup_name and e["status"] == 400 for e in entries):
        raise NotJudged(f"not judged: the fallback {backup!r} never got the prefill to refuse (the gateway did not "
                        f"fail over from the primary's 503): {ex.error or f'HTTP {ex.status}'}", evidence)
    if ex.error:
        raise Deviation(f"the fallback refused the prefill and the caller got no complete answer: {ex.error}", evidence)
    if ex.status == 200:
        body = ex.json()
        got = oc.text(body)
        answered = [e["answer_text"] for e in entries if e["status"] == 200]
        if not (got or "").strip():
            raise Deviation("the fallback refused the prefill, yet the caller got a 200 with no content passed off "
                            "as the reply", evidence)
        if got.strip() == PREFILL.strip():
            raise Deviation(f"the fallback refused the prefill, yet the caller got a 200 whose content is the prefill "
                            f"passed off as the reply ({got!r})", evidence)
        if not answered:
            raise Deviation(f"the caller got a 200 ({got!r}) though no provider answered", evidence)
        if got not in answered and got not in {PREFILL + a for a in answered}:
            raise Deviation(f"the caller got {got!r}, not what the answering provider sent ({answered[-1]!r})", evidence)
        return judge(oc.full_shape(body), evidence, "the fallback refused the prefill; the caller got a real answer "
                                                    "from the next provider")
    if ex.status is not None and ex.status >= 400:
        return judge([f"an error the caller cannot read: {v}" for v in eo.openai_error_object(ex.json())], evidence,
                     f"the fallback refused the prefill; the caller got a clean HTTP {ex.status} error")
    raise Deviation(f"the fallback refused the prefill and the caller got HTTP {ex.status}: neither an answer nor "
                    "an error", evidence)
