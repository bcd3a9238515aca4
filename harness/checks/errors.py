"""Client errors get a clean 4xx with an error object: never a 5xx, never a hang."""
from __future__ import annotations

import json
from typing import Any

from harness.checks.params import params_rule
from harness.checks.base import CheckContext, Unsupported, Verdict, check, judge, require_answer
from harness.oracles import errors as eo

# Broken request bodies, by name. Each must be refused as the client's fault.
CASES: dict[str, Any] = {
    "invalid_json": b'{"model": "MODEL", "messages": [',
    "empty_body": b"",
    "not_an_object": b'["model", "messages"]',
    "missing_messages": {"model": "MODEL"},
    "messages_not_a_list": {"model": "MODEL", "messages": "hello"},
    "message_without_role": {"model": "MODEL", "messages": [{"content": "hi"}]},
    "temperature_not_a_number": {"model": "MODEL", "messages": [{"role": "user", "content": "hi"}],
                                 "temperature": "warm"},
    "unknown_model": {"model": "no-such-model-harness", "messages": [{"role": "user", "content": "hi"}]},
}


def _raw(case: str, model: str) -> bytes:
    body = CASES[case]
    if isinstance(body, bytes):
        return body.replace(b"MODEL", model.encode())
    return json.dumps(body).replace('"MODEL"', json.dumps(model)).encode()


def _known_case(params: dict) -> None:
    if params.get("case") not in CASES:
        raise ValueError(f"case: {params.get('case')!r} is not one of {', '.join(sorted(CASES))}")


@check("errors.refused_cleanly")
@params_rule(_known_case)
def refused_cleanly(ctx: CheckContext, case: str) -> Verdict:
    model = ctx.model("openai")
    ex = ctx.gateway.request("POST", ctx.path("chat", model), raw=_raw(case, model))
    require_answer(ex)
    violations = eo.client_error_status(ex.status, ex.error)
    if ex.status and ex.status >= 400:
        violations += eo.openai_error_object(ex.json())
    return judge(violations, {"exchange": ex.evidence()}, f"refused with HTTP {ex.status} and an error object")


@check("errors.anthropic_refused_cleanly")
def anthropic_refused_cleanly(ctx: CheckContext) -> Verdict:
    """A Messages request without max_tokens is the client's fault."""
    if "anthropic_messages" not in ctx.cfg.target.protocols:
        raise Unsupported("the gateway does not expose the Anthropic Messages API")
    body = {"model": ctx.model("anthropic"), "messages": "hello"}
    ex = ctx.gateway.request("POST", ctx.path("messages", body["model"]), body,
                             headers={"anthropic-version": "2023-06-01"})
    require_answer(ex)
    return judge(eo.client_error_status(ex.status, ex.error), {"exchange": ex.evidence()},
                 f"refused with HTTP {ex.status}")
