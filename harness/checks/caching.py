"""Response caching, proven from the provider's journal (a hit never reaches the provider)."""
from __future__ import annotations

import time
from typing import Any, Literal

from harness.checks.base import CheckContext, Unsupported, Verdict, check, judge, require_2xx
from harness.checks.failover import trail
from harness.oracles import openai_chat as oc
from harness.oracles import openai_stream as os_


def _setup(ctx: CheckContext) -> tuple[Any, str, str]:
    c = ctx.cfg.promises.cache
    if c is None:
        raise Unsupported("the gateway promises no response cache (promises.cache)")
    return c, ctx.role("cache"), ctx.tag()


def _ask(ctx: CheckContext, model: str, tag: str, prompt: str = "Cache me.", **extra: Any):
    return ctx.chat(model, tag, prompt=prompt, **extra)


def _upstream(ctx: CheckContext, model: str, tag: str) -> list[dict[str, Any]]:
    return ctx.provider_of(model).journal(tag=tag)


@check("cache.identical_hits")
def identical_hits(ctx: CheckContext) -> Verdict:
    c, model, tag = _setup(ctx)
    a = _ask(ctx, model, tag)
    b = _ask(ctx, model, tag)
    require_2xx(a)
    require_2xx(b)
    n = len(_upstream(ctx, model, tag))
    violations = [] if n == 1 else [f"two identical requests reached the provider {n} times"]
    if oc.text(a.json()) != oc.text(b.json()):
        violations.append("the cached answer's text differs from the first answer")
    return judge(violations, {"first": a.evidence(), "second": b.evidence(), "upstream": trail(_upstream(ctx, model, tag))},
                 "the second identical request was served from the cache")


@check("cache.varies_on")
def varies_on(ctx: CheckContext, field: Literal["model", "messages", "temperature"]) -> Verdict:
    """A request differing only in `field` (model, messages, temperature) is a miss."""
    c, model, tag = _setup(ctx)
    if field not in c.varies_on:
        raise Unsupported(f"the gateway's cache key does not include {field!r} (promises.cache.varies_on)")
    first = _ask(ctx, model, tag, temperature=0.2)
    require_2xx(first)
    other_model = model
    if field == "model":
        other_model = ctx.role("cache_other")
        second = _ask(ctx, other_model, tag, temperature=0.2)
    elif field == "messages":
        second = _ask(ctx, model, tag, prompt="Cache me too.", temperature=0.2)
    elif field == "temperature":
        second = _ask(ctx, model, tag, temperature=0.7)
    else:
        raise Unsupported(f"no way to vary {field!r}")
    require_2xx(second)
    entries = ctx.attempts(tag, [model, other_model])
    return judge([] if len(entries) == 2 else [f"a request differing in {field} reached the provider {len(entries)} time(s) in all: "
                                               "it was served from the cache"],
                 {"first": first.evidence(), "second": second.evidence(), "upstream": trail(entries)},
                 f"a different {field} missed the cache")


@check("cache.ttl_expiry")
def ttl_expiry(ctx: CheckContext) -> Verdict:
    c, model, tag = _setup(ctx)
    if c.ttl_s > 30:
        raise Unsupported(f"a cache TTL of {c.ttl_s}s is too long to wait for; shorten promises.cache.ttl_s for tests")
    first = _ask(ctx, model, tag)
    second = _ask(ctx, model, tag)            # a hit inside the TTL
    time.sleep(c.ttl_s + 1.0)
    third = _ask(ctx, model, tag)             # a miss after it
    for ex in (first, second, third):
        require_2xx(ex)
    n = len(_upstream(ctx, model, tag))
    return judge([] if n == 2 else [f"expected 2 upstream calls (first, then after the {c.ttl_s}s TTL), got {n}"],
                 {"third": third.evidence(), "upstream": trail(_upstream(ctx, model, tag))},
                 f"hit inside the TTL, miss after {c.ttl_s}s")


@check("cache.stream_consistent")
def stream_consistent(ctx: CheckContext) -> Verdict:
    """A plain answer and a streamed one for the same request carry the same text, cached or not."""
    c, model, tag = _setup(ctx)
    plain = _ask(ctx, model, tag)
    require_2xx(plain)
    streamed = ctx.chat(model, tag, prompt="Cache me.", stream=True)
    require_2xx(streamed)
    s = os_.parse(streamed.events)
    violations = os_.well_formed(s) + os_.ends_with_done(s)
    if os_.text(s) != oc.text(plain.json()):
        violations.append(f"streamed text {os_.text(s)!r} differs from the plain answer {oc.text(plain.json())!r}")
    return judge(violations, {"plain": plain.evidence(), "streamed": streamed.evidence()},
                 "plain and streamed answers agree")
