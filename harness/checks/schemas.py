"""CM-27: what the gateway answers, checked whole against the published schema of its client protocol.

Offering a protocol (target.protocols) is the promise; its source is promises.sources
`protocols.<protocol>` (the gateway's route or docs), shown in the evidence. The judging is in
oracles/schemas.py, over our compact schemas in harness/schemas/.
"""
from __future__ import annotations

from typing import Any, Literal

from harness.checks.base import CheckContext, NotJudged, Unsupported, Verdict, check, judge, require_2xx, require_answer
from harness.checks.openai_stream import stream_evidence
from harness.client.http import Exchange
from harness.oracles import schemas as sc

Protocol = Literal["openai_chat", "openai_responses", "anthropic_messages"]
NAMES = {"openai_chat": "OpenAI chat completions", "openai_responses": "the OpenAI Responses API",
         "anthropic_messages": "the Anthropic Messages API"}
KIND = {"openai_chat": "openai", "openai_responses": "openai", "anthropic_messages": "anthropic"}   # the model's provider
ROUTE = {"openai_chat": "chat", "openai_responses": "responses", "anthropic_messages": "messages"}
PLAIN = {"openai_chat": (sc.chat_completion, "CreateChatCompletionResponse"),
         "openai_responses": (sc.response, "Response"), "anthropic_messages": (sc.message, "Message")}
STREAMED = {"openai_chat": (sc.chat_chunks, "CreateChatCompletionStreamResponse"),
            "openai_responses": (sc.response_events, "ResponseStreamEvent"),
            "anthropic_messages": (sc.message_events, "the Messages stream events")}
# The request that has no right answer but an error of the protocol's own: the body lacks what the
# protocol requires (messages, input), or the model does not exist.
MALFORMED = {"openai_chat": "a body without messages", "openai_responses": "a body without input",
             "anthropic_messages": "a body without messages"}
UNKNOWN_MODEL = "no-such-model-harness"


def _offered(ctx: CheckContext, protocol: str) -> str:
    if protocol not in ctx.cfg.target.protocols:
        raise Unsupported(f"the gateway does not offer {NAMES[protocol]} (target.protocols)")
    return ctx.model(KIND[protocol])


def _promise(ctx: CheckContext, protocol: str, evidence: dict[str, Any]) -> dict[str, Any]:
    """The evidence, with where the gateway says it speaks this protocol and the schema judged."""
    key = f"protocols.{protocol}"
    if key in ctx.cfg.promises.sources:
        evidence["promise_sources"] = {key: ctx.cfg.promises.sources[key]}
    evidence["schema"] = f"harness/schemas/{sc.FILES[protocol]}"
    return evidence


def _send(ctx: CheckContext, protocol: str, model: str, stream: bool) -> Exchange:
    tag = ctx.tag()
    if protocol == "openai_chat":
        # include_usage: the usage chunk (choices: []) is a chunk of the stream, judged like the others
        extra = {"stream_options": {"include_usage": True}} if stream else {}
        return ctx.chat(model, tag, stream=stream, **extra)
    if protocol == "openai_responses":
        return ctx.responses(model, tag, stream=stream)
    return ctx.messages(model, tag, stream=stream)


@check("schemas.answer")
def answer(ctx: CheckContext, protocol: Protocol, stream: bool = False) -> Verdict:
    model = _offered(ctx, protocol)
    ex = _send(ctx, protocol, model, stream)
    require_2xx(ex)
    if stream:
        oracle, what = STREAMED[protocol]
        return judge(oracle(ex.events), _promise(ctx, protocol, stream_evidence(ex)),
                     f"all {len(ex.events)} streamed events match {what}")
    oracle, what = PLAIN[protocol]
    return judge(oracle(ex.json()), _promise(ctx, protocol, {"exchange": ex.evidence()}), f"the answer matches {what}")


@check("schemas.errors")
def errors(ctx: CheckContext, protocol: Protocol) -> Verdict:
    """Two requests the gateway must refuse, each answer's body judged as the protocol's error."""
    model = _offered(ctx, protocol)
    headers = {**({"anthropic-version": "2023-06-01"} if protocol == "anthropic_messages" else {}),
               **ctx.model_headers(model)}
    path = ctx.path(ROUTE[protocol], model)
    cases = {f"an unknown model ({UNKNOWN_MODEL})": _good_body(protocol, UNKNOWN_MODEL),
             MALFORMED[protocol]: {"model": model, **({"max_tokens": 16} if protocol == "anthropic_messages" else {})}}
    violations: list[str] = []
    judged: list[str] = []
    exchanges: dict[str, Any] = {}
    for case, body in cases.items():
        ex = ctx.gateway.request("POST", path, body, headers=headers)
        require_answer(ex)
        exchanges[case] = ex.evidence()
        if ex.status is None or ex.status < 400:
            continue   # no error to judge: whether it should have been refused is CM-15's question
        judged.append(f"{case}: HTTP {ex.status}")
        violations += [f"{case}, HTTP {ex.status}: {v}" for v in sc.error_body(ex.json(), protocol)]
    evidence = _promise(ctx, protocol, {"exchanges": exchanges})
    if not judged:
        raise NotJudged(f"no error answer to judge: the gateway answered 2xx to {' and to '.join(cases)}", evidence)
    return judge(violations, evidence, f"every error body is {NAMES[protocol]}'s ({'; '.join(judged)})")


def _good_body(protocol: str, model: str) -> dict[str, Any]:
    if protocol == "openai_chat":
        return {"model": model, "messages": [{"role": "user", "content": "Say something."}]}
    if protocol == "openai_responses":
        return {"model": model, "input": "Say something."}
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Say something."}]}
