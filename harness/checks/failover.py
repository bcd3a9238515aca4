"""Failover: a failing primary, and whether (and how cleanly) the gateway moved down the chain."""
from __future__ import annotations

import time
from typing import Any, Optional, Union

from harness.checks.base import (SAFE, CheckContext, Deviation, NotJudged, Unsupported, Verdict, check, judge,
                                 provider_usage, require_2xx)
from harness.client.http import Exchange
from harness.oracles import errors as eo
from harness.oracles import openai_chat as oc
from harness.oracles import openai_stream as os_

Fault = Union[int, str]   # an HTTP status, "connect_error" or "disconnect"


def trail(entries: list[dict[str, Any]]) -> list[str]:
    """The journal as evidence: which provider got what, when, and how it ended."""
    if not entries:
        return []
    t0 = entries[0]["t_received"]
    return [f"+{e['t_received'] - t0:.3f}s {e['provider']} {e['model']} -> "
            f"{'cut' if e['cut'] else e['status']}" for e in entries]


def fail_primary(ctx: CheckContext, model: str, tag: str, fault: Fault, times: int | None = None) -> None:
    if fault == "connect_error":
        return  # the model's provider refuses connections by construction (roles.failover_refused)
    prov = ctx.provider_of(model)
    if fault == "disconnect":
        prov.script(tag=tag, cut_after_chunks=0, times=times)
    else:
        prov.script(tag=tag, status=int(fault), times=times,
                    body={"error": {"message": f"scripted {fault}", "type": "harness_fault", "code": fault}})


def not_2xx(ex: Exchange) -> Optional[str]:
    """Why the exchange is not a complete 2xx answer (require_2xx's reason), or None when it is."""
    try:
        require_2xx(ex)
    except Deviation as exc:
        return exc.reason
    return None


def stream_problems(ex: Exchange, entries: list[dict[str, Any]]) -> list[str]:
    """Why a streamed answer is not one whole, clean stream of the answering provider's text."""
    if why := not_2xx(ex):
        return [why]
    s = os_.parse(ex.events)
    out = os_.well_formed(s) + os_.ends_with_done(s) + os_.single_finish_reason_last(s)
    answered = [e for e in entries if e["status"] == 200]
    if answered and os_.text(s) != answered[-1]["answer_text"]:
        out.append(f"streamed text {os_.text(s)!r} is not the answering provider's {answered[-1]['answer_text']!r}")
    return out


def answer_problems(ex: Exchange, entries: list[dict[str, Any]], stream: bool) -> list[str]:
    """Why the caller did not get one clean answer (plain: the full OpenAI shape; streamed: above)."""
    if stream:
        return stream_problems(ex, entries)
    if why := not_2xx(ex):
        return [why]
    return oc.full_shape(ex.json())


def _clean_error(ex: Exchange) -> list[str]:
    return eo.openai_error_object(ex.json()) if ex.status and ex.status >= 400 else [f"HTTP {ex.status}"]


@check("failover.on_fault")
def on_fault(ctx: CheckContext, fault: Fault, stream: bool = False) -> Verdict:
    """The primary fails with `fault`; the gateway moves to the next model exactly when it promises to.
    `stream`: the same for a streamed request (the fault comes before its first byte)."""
    if fault == "connect_error":
        model = ctx.role("failover_refused")
        if not ctx.provider_of(model).refuses:
            raise Unsupported(f"the provider of {model!r} accepts connections; set refuses_connections on it")
    else:
        model = ctx.role("failover")
    chain = ctx.chain(model)
    tag = ctx.tag()
    fail_primary(ctx, model, tag, fault)
    ex = ctx.chat(model, tag, stream=stream)
    entries = ctx.attempts(tag, [model] + chain)
    backup = ctx.provider_of(chain[0]).name
    moved = any(e["provider"] == backup for e in entries)
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries)}
    promised = ctx.policy.fails_over(fault)
    if promised:
        if moved:
            if problems := answer_problems(ex, entries, stream):
                raise Deviation(f"failed over on {fault} but the caller did not get one clean answer: "
                                + "; ".join(problems[:3]), evidence)
            return Verdict("PASS", f"on {fault} the gateway failed over to {chain[0]!r} and answered 200"
                           + (" with the whole stream" if stream else ""), evidence)
        if not ex.error and ex.status and ex.status >= 400 and not _clean_error(ex):
            raise Deviation(f"promised failover on {fault} did not happen, but the caller got a clean "
                            f"HTTP {ex.status} error", evidence, status=SAFE)
        raise Deviation(f"promised failover on {fault} did not happen: "
                        f"{ex.error or f'HTTP {ex.status}'}", evidence)
    if moved:
        raise Deviation(f"failed over on {fault}, which the gateway promises not to do "
                        f"(the request was sent to {chain[0]!r} too)", evidence)
    if ex.error:
        raise Deviation(f"no failover on {fault} as promised, but no clean answer: {ex.error}", evidence)
    if ex.status is not None and ex.status < 400:
        raise Deviation(f"no failover on {fault}, yet the caller got HTTP {ex.status}: the failure was hidden", evidence)
    return judge(_clean_error(ex), evidence, f"no failover on {fault}, as promised; the caller got HTTP {ex.status}")


def _failed_over(ctx: CheckContext, stream: bool = False, fault: Fault = 503, **extra: Any):
    model = ctx.role("failover")
    chain = ctx.chain(model)
    if not ctx.policy.fails_over(fault):
        raise Unsupported(f"the gateway does not promise failover on {fault}")
    tag = ctx.tag()
    fail_primary(ctx, model, tag, fault)
    ex = ctx.chat(model, tag, stream=stream, **extra)
    entries = ctx.attempts(tag, [model] + chain)
    return model, chain, tag, ex, entries


@check("failover.transparent")
def transparent(ctx: CheckContext) -> Verdict:
    """After a failover the caller sees one clean answer: the backup's text, no error leaking through."""
    model, chain, tag, ex, entries = _failed_over(ctx)
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries)}
    if why := not_2xx(ex):
        raise Deviation(why, evidence)
    body = ex.json()
    answered = [e for e in entries if e["status"] == 200]
    violations = oc.full_shape(body)
    if isinstance(body, dict) and "error" in body:
        violations.append(f"the answer carries an error field: {body['error']!r}")
    if answered and oc.text(body) != answered[-1]["answer_text"]:
        violations.append(f"the text {oc.text(body)!r} is not what the answering provider sent {answered[-1]['answer_text']!r}")
    return judge(violations, evidence, "one clean answer, the backup's text, no error leaked")


@check("failover.chain_order")
def chain_order(ctx: CheckContext, stream: bool = False) -> Verdict:
    """Primary and first fallback fail: the second fallback answers, and the attempts follow the chain."""
    model = ctx.role("failover")
    chain = ctx.chain(model, min_len=2)
    if not ctx.policy.fails_over(503):
        raise Unsupported("the gateway does not promise failover on 503")
    tag = ctx.tag()
    fail_primary(ctx, model, tag, 503)
    fail_primary(ctx, chain[0], tag, 503)
    ex = ctx.chat(model, tag, stream=stream)
    entries = ctx.attempts(tag, [model] + chain)
    order = ["primary" if e["provider"] == ctx.provider_of(model).name else
             chain[[ctx.provider_of(c).name for c in chain].index(e["provider"])] for e in entries]
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries)}
    dedup = [o for i, o in enumerate(order) if i == 0 or order[i - 1] != o]
    want = ["primary", chain[0], chain[1]]
    violations = [] if dedup == want else [f"attempts went {dedup}, the chain is {want}"]
    if not violations:
        violations += answer_problems(ex, entries, stream) if stream else ([why] if (why := not_2xx(ex)) else [])
    return judge(violations, evidence, f"attempts followed the chain {want}")


@check("failover.stream")
def stream(ctx: CheckContext) -> Verdict:
    """A stream whose primary fails before the first byte comes, whole, from the fallback."""
    model, chain, tag, ex, entries = _failed_over(ctx, stream=True)
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries)}
    if why := not_2xx(ex):
        raise Deviation(why, evidence)
    s = os_.parse(ex.events)
    violations = os_.well_formed(s) + os_.ends_with_done(s) + os_.single_finish_reason_last(s)
    answered = [e for e in entries if e["status"] == 200]
    if answered and os_.text(s) != answered[-1]["answer_text"]:
        violations.append(f"streamed text {os_.text(s)!r} is not the fallback's {answered[-1]['answer_text']!r}")
    return judge(violations, evidence, "the stream came whole from the fallback")


@check("failover.backup_called_once")
def backup_called_once(ctx: CheckContext, stream: bool = False) -> Verdict:
    model, chain, tag, ex, entries = _failed_over(ctx, stream=stream)
    backup = ctx.provider_of(chain[0]).name
    n = sum(1 for e in entries if e["provider"] == backup)
    return judge([] if n == 1 else [f"the fallback got {n} requests for one client request"],
                 {"exchange": ex.evidence(), "attempts": trail(entries)}, "the fallback got exactly one request")


@check("failover.not_when_healthy")
def not_when_healthy(ctx: CheckContext, stream: bool = False) -> Verdict:
    model = ctx.role("failover")
    chain = ctx.chain(model)
    tag = ctx.tag()
    ex = ctx.chat(model, tag, stream=stream)
    entries = ctx.attempts(tag, [model] + chain)
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries)}
    providers = [e["provider"] for e in entries]
    want = [ctx.provider_of(model).name]
    require_2xx(ex)
    return judge([] if providers == want else [f"a healthy request went to {providers}, expected {want}"],
                 evidence, "a healthy primary served alone")


@check("failover.reports_model")
def reports_model(ctx: CheckContext, stream: bool = False) -> Verdict:
    """`model` names the promised model after a failover: in the body, or in every streamed chunk."""
    promise = ctx.cfg.promises.failover.reports_model
    if promise == "any":
        raise Unsupported("the gateway promises nothing about `model` after a failover (promises.failover.reports_model)")
    model, chain, tag, ex, entries = _failed_over(ctx, stream=stream)
    require_2xx(ex)
    target = chain[0] if promise == "answering" else model
    accepted = {target, ctx.cfg.model(target).upstream}
    evidence = {"exchange": ex.evidence(), "attempts": trail(entries)}
    if stream:
        names = [c.get("model") for c in os_.parse(ex.events).chunks]
        wrong = sorted({str(n) for n in names if n not in accepted})
        return judge([f"streamed chunks name model(s) {wrong}; the promise ({promise}) wants one of {sorted(accepted)}"]
                     if wrong or not names else [], evidence, f"every chunk names the {promise} model")
    got = (ex.json() or {}).get("model")
    return judge([] if got in accepted else [f"model is {got!r}; the promise ({promise}) wants one of {sorted(accepted)}"],
                 evidence, f"model {got!r} names the {promise} model")


@check("failover.usage_present")
def usage_present(ctx: CheckContext, stream: bool = False) -> Verdict:
    """Usage after a failover is the answering provider's (streamed: with include_usage, the usage chunk)."""
    extra = {"stream_options": {"include_usage": True}} if stream else {}
    model, chain, tag, ex, entries = _failed_over(ctx, stream=stream, **extra)
    require_2xx(ex)
    answered = [e for e in entries if e["status"] == 200]
    if stream:
        got = next((c["usage"] for c in os_.parse(ex.events).chunks if c.get("usage") is not None), None)
    else:
        got = (ex.json() or {}).get("usage")
    want = provider_usage(answered[-1]) if answered else None
    if isinstance(got, dict):
        got = {k: got.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    return judge([] if got == want else [f"usage after failover is {got!r}, the answering provider reported {want!r}"],
                 {"exchange": ex.evidence(), "attempts": trail(entries)}, "usage is the answering provider's")


@check("failover.metadata_header")
def metadata_header(ctx: CheckContext, stream: bool = False) -> Verdict:
    header = ctx.cfg.promises.failover.metadata_header
    if not header:
        raise Unsupported("the gateway promises no header naming the answering provider (promises.failover.metadata_header)")
    model, chain, tag, ex, entries = _failed_over(ctx, stream=stream)
    require_2xx(ex)
    value = ex.headers.get(header.lower())
    backup_url = ctx.provider_of(chain[0]).url.split("//")[-1]
    primary_url = ctx.provider_of(model).url.split("//")[-1]
    violations = []
    if value is None:
        violations.append(f"no {header} header")
    elif backup_url not in value or primary_url in value:
        violations.append(f"{header}: {value!r} does not name the answering provider {backup_url} (journal)")
    return judge(violations, {"exchange": ex.evidence(), "headers": ex.headers, "attempts": trail(entries)},
                 f"{header} names the provider the journal shows answered")


FLAP_GAP_S = 0.2      # between two requests of a flapping series: a steady trickle, not a flood
FLAP_OUTAGE_MIN = 2   # requests sent while the primary is down, at least, however slowly each is answered
FLAP_STEADY = 2       # requests past the bound that must all reach the primary: it has the traffic back


@check("failover.flapping_primary")
def flapping_primary(ctx: CheckContext, rounds: int = 2, down_s: float = 2.0) -> Verdict:
    """The primary flaps: down (503) for `down_s` and at least FLAP_OUTAGE_MIN requests, then healthy,
    `rounds` times over, under a steady trickle of requests. Judged without a breaker: every request is
    answered 200 (by the primary or a fallback), and every request sent promises.failover.returns_to_primary_s
    or more after the primary recovered is served by it (a breaker's cooldown counts against that bound).
    FAIL when a request fails during the outage, or when traffic stays with the fallback past the bound."""
    bound = ctx.cfg.promises.failover.returns_to_primary_s
    if bound is None:
        raise Unsupported("the gateway promises nothing about when traffic returns to a recovered primary "
                          "(promises.failover.returns_to_primary_s)")
    model = ctx.role("failover")
    chain = ctx.chain(model)
    if not ctx.policy.fails_over(503):
        raise Unsupported("the gateway does not promise failover on 503")
    prov, tag = ctx.provider_of(model), ctx.tag()
    sent: list[dict[str, Any]] = []
    returns: list[float] = []
    violations: list[str] = []
    t0 = time.time()

    def send(rnd: int, phase: str) -> dict[str, Any]:
        before = {e["seq"] for e in prov.journal(tag=tag)}
        at = time.time()
        ex = ctx.chat(model, tag, prompt=f"Flapping probe {len(sent) + 1}.")   # distinct: no cache answers
        mine = [e for e in prov.journal(tag=tag) if e["seq"] not in before]
        by = "primary" if any(e["status"] == 200 for e in mine) else "fallback" if ex.status == 200 else "nobody"
        row = {"round": rnd, "phase": phase, "sent_at_s": round(at - t0, 3), "status": ex.status,
               "error": ex.error, "served_by": by, "elapsed_s": round(ex.elapsed_s, 3)}
        sent.append(row)
        if ex.error or ex.status != 200:
            violations.append(f"round {rnd}: a request sent {phase} got {ex.error or f'HTTP {ex.status}'}")
        time.sleep(FLAP_GAP_S)
        return row

    for rnd in range(1, rounds + 1):
        fail_primary(ctx, model, tag, 503)
        down_at, n = time.time(), 0
        while n < FLAP_OUTAGE_MIN or time.time() - down_at < down_s:
            send(rnd, "during the outage")
            n += 1
        prov.clear_script(tag)                  # healthy again: between two requests, none straddles it
        healed = time.time()
        if rnd == 1 and not any(e["status"] != 200 for e in prov.journal(tag=tag)):
            raise NotJudged("not judged: the primary never failed a request in its first outage (the gateway "
                            "sent it nothing, or the script did not apply)", {"requests": sent})
        steady = 0
        while steady < FLAP_STEADY and not violations:
            late = time.time() - healed >= bound
            row = send(rnd, f"{bound:g}s or more after the recovery" if late else "just after the recovery")
            if late:
                if row["served_by"] != "primary":
                    violations.append(f"round {rnd}: the primary was healthy again {row['sent_at_s'] - (healed - t0):.1f}s "
                                      f"before a request that went to the fallback, beyond the promised {bound:g}s: "
                                      "the gateway stuck to the fallback")
                steady += 1
        back = [e for e in prov.journal(tag=tag) if e["status"] == 200 and e["t_received"] >= healed]
        if back:
            returns.append(round(back[0]["t_received"] - healed, 3))
        if violations:
            break
    evidence = {"model": model, "fallbacks": chain, "bound_s": bound, "down_s": down_s, "requests": sent,
                "primary_answered_after_s": returns, "attempts": trail(ctx.attempts(tag, [model] + chain))}
    outage = sum(1 for r in sent if r["phase"] == "during the outage")
    return judge(violations, evidence, f"all {len(sent)} requests through {rounds} outages ({outage} sent while the "
                                       f"primary was down) answered 200; every request sent {bound:g}s or more after "
                                       f"a recovery was served by the primary (its first answer came "
                                       f"{max(returns or [0.0]):.1f}s after a recovery at most)")
