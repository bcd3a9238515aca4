"""Circuit breakers / cooldowns, observed from the provider's journal.

Each claim uses a breaker model of its own (roles.breaker[slot]) because breaker state is per
provider deployment and would otherwise leak between claims. Failures are scripted with `times`,
so the count of failures is exact whatever the gateway's retries do.
"""
from __future__ import annotations

import time
from typing import Any, Literal

from harness.checks.base import CheckContext, Deviation, NotJudged, Unsupported, Verdict, check, judge, poll_until
from harness.checks.failover import fail_primary, trail
from harness.config import Breaker


class _Rig:
    def __init__(self, ctx: CheckContext, slot: int) -> None:
        b = ctx.cfg.promises.breaker
        if b is None:
            raise Unsupported("the gateway promises no circuit breaker (promises.breaker)")
        self.ctx, self.b = ctx, b
        self.model = ctx.slot("breaker", slot)
        self.chain = ctx.chain(self.model)
        self.tag = ctx.tag()
        self.prov = ctx.provider_of(self.model)
        self.sent = 0

    def primary(self) -> list[dict[str, Any]]:
        return self.prov.journal(tag=self.tag)

    def failures(self) -> int:
        return sum(1 for e in self.primary() if e["status"] != 200)

    def fail(self, n: int) -> bool:
        """Makes the primary fail exactly n more times, sending as few requests as that takes.
        False when the provider stopped getting traffic first: the breaker opened early."""
        target = self.failures() + n
        fail_primary(self.ctx, self.model, self.tag, 503, times=n)
        for _ in range(3 * n + 3):
            if self.failures() >= target:
                return True
            self.send()
        self.prov.clear_script(self.tag)
        return self.failures() >= target

    def early(self, n: int) -> Deviation:
        """The FAIL to raise when fail(n) found the breaker opened before n failures."""
        return Deviation(f"the provider stopped getting traffic after {self.failures()} failure(s), "
                         f"before {n}: the breaker opened early", self.evidence())

    def require_open(self, what: str) -> None:
        """A claim about an open breaker (its cooldown, its independence) starts from one that is
        open: one probe must not reach the provider. Else it cannot be judged (a PASS there would
        be about a breaker that never opened; CM-5.3.2's own FAIL says so)."""
        before = len(self.primary())
        self.send()
        if len(self.primary()) > before:
            raise NotJudged(f"not judged: after {self.b.opens_after} failures the breaker did not open (the provider "
                            f"still got traffic), so {what} cannot be shown", self.evidence())

    def send(self, n: int = 1) -> None:
        for _ in range(n):
            # Distinct prompts, so a response cache never answers in the provider's place.
            self.sent += 1
            self.ctx.chat(self.model, self.tag, prompt=f"Breaker probe {self.sent}.")

    def evidence(self) -> dict[str, Any]:
        return {"model": self.model, "attempts": trail(self.ctx.attempts(self.tag, [self.model] + self.chain))}


def _threshold(b: Breaker) -> int:
    return b.opens_after


@check("breaker.below_threshold")
def below_threshold(ctx: CheckContext, slot: int) -> Verdict:
    rig = _Rig(ctx, slot)
    n = _threshold(rig.b)
    if n > 1 and not rig.fail(n - 1):
        raise rig.early(n - 1)
    before = len(rig.primary())
    rig.send()
    got = len(rig.primary()) - before
    return judge([] if got >= 1 else [f"after {n - 1} failure(s) (threshold {n}) the provider got no more traffic"],
                 rig.evidence(), f"after {n - 1} failure(s) the provider still gets traffic")


@check("breaker.opens")
def opens(ctx: CheckContext, slot: int) -> Verdict:
    rig = _Rig(ctx, slot)
    if not rig.fail(_threshold(rig.b)):
        raise rig.early(_threshold(rig.b))
    before = len(rig.primary())
    t0 = time.monotonic()
    rig.send(3)
    elapsed = time.monotonic() - t0
    got = len(rig.primary()) - before
    if elapsed > rig.b.cooldown_s * 0.8:
        raise Unsupported(f"the cooldown ({rig.b.cooldown_s}s) is too short to observe: 3 requests took {elapsed:.1f}s")
    return judge([] if got == 0 else [f"after {rig.b.opens_after} failures the provider still got {got} of 3 requests"],
                 rig.evidence(), f"after {rig.b.opens_after} failures the provider got no traffic")


@check("breaker.after_cooldown")
def after_cooldown(ctx: CheckContext, slot: int, outcome: Literal["trial", "success", "failure"]) -> Verdict:
    """outcome=trial: one request reaches the provider after the cooldown; success: it closes the
    breaker; failure: it reopens it at once (half-open breakers only)."""
    rig = _Rig(ctx, slot)
    if outcome == "failure" and not rig.b.half_open:
        raise Unsupported("the gateway's breaker has no half-open state: after a cooldown it counts failures anew")
    if not rig.fail(_threshold(rig.b)):
        raise rig.early(_threshold(rig.b))
    rig.require_open("what happens after its cooldown")
    time.sleep(rig.b.cooldown_s + 0.5)
    if outcome == "failure":
        fail_primary(ctx, rig.model, rig.tag, 503, times=1)
    before = len(rig.primary())
    rig.send()
    trial = len(rig.primary()) - before
    if outcome == "trial":
        return judge([] if trial >= 1 else ["after the cooldown no request reached the provider"],
                     rig.evidence(), "after the cooldown a trial request reached the provider")
    before = len(rig.primary())
    rig.send(3)
    later = len(rig.primary()) - before
    if outcome == "success":
        return judge([] if trial >= 1 and later == 3 else [f"after a good trial the provider got {later} of 3 requests"],
                     rig.evidence(), "a good trial closed the breaker: all traffic returned")
    return judge([] if later == 0 else [f"after a failed trial the provider still got {later} of 3 requests"],
                 rig.evidence(), "a failed trial reopened the breaker at once")


@check("breaker.independent")
def independent(ctx: CheckContext, slot: int, other_slot: int) -> Verdict:
    rig, other = _Rig(ctx, slot), _Rig(ctx, other_slot)
    if not rig.fail(_threshold(rig.b)):
        raise rig.early(_threshold(rig.b))
    rig.require_open("that another provider's breaker stays closed meanwhile")
    before = len(other.primary())
    other.send(2)
    got = len(other.primary()) - before
    return judge([] if got == 2 else [f"while {rig.model!r}'s breaker was open, {other.model!r}'s healthy provider got {got} of 2"],
                 {"open": rig.evidence(), "other": other.evidence()}, "breakers are independent per provider")


@check("breaker.success_resets")
def success_resets(ctx: CheckContext, slot: int) -> Verdict:
    rig = _Rig(ctx, slot)
    if rig.b.counts != "consecutive":
        raise Unsupported("the gateway counts failures in a window, not consecutively: a success does not reset the count")
    n = _threshold(rig.b)
    if n < 2:
        raise Unsupported("a threshold of 1 leaves nothing to reset")
    if not rig.fail(n - 1):
        raise rig.early(n - 1)
    rig.send()                      # a success in between
    if not rig.fail(n - 1):
        raise Deviation(f"{n - 1} failures, a success, then the provider stopped getting traffic "
                        f"after {rig.failures()} failures in all: the success did not reset the count", rig.evidence())
    before = len(rig.primary())
    rig.send()
    got = len(rig.primary()) - before
    return judge([] if got == 1 else [f"{n - 1} failures, a success, {n - 1} failures: the provider then got no traffic"],
                 rig.evidence(), "a success reset the failure count")


@check("breaker.flapping_recovery")
def flapping_recovery(ctx: CheckContext, slot: int) -> Verdict:
    """Down for a while, then healthy: opened, left alone for the cooldown, probed, taken back.
    The sequence is read from the journal: failures, a silence while requests kept coming, then 200s."""
    rig = _Rig(ctx, slot)
    b = rig.b
    if not rig.fail(b.opens_after):         # down: enough failures to open
        raise rig.early(b.opens_after)
    # keep asking all through the cooldown and after it
    poll_until(rig.send, lambda _: False, b.cooldown_s * 2 + 3, 0.2)
    entries = rig.primary()
    fails = [e for e in entries if e["status"] != 200]
    ok_after = [e for e in entries if e["status"] == 200 and fails and e["t_received"] > fails[-1]["t_received"]]
    violations = []
    if not ok_after:
        violations.append("the provider was never taken back into use after it recovered")
    else:
        gap = ok_after[0]["t_received"] - fails[-1]["t_received"]
        if gap < b.cooldown_s * 0.8:
            violations.append(f"traffic returned {gap:.2f}s after the last failure, before the {b.cooldown_s}s cooldown: "
                              "the breaker never opened")
    return judge(violations, rig.evidence(), "opened, left alone for the cooldown, probed and taken back")


REFUSAL_PROMPT_S = 2.0   # "at once": no provider is waited for, only the gateway's own bookkeeping


@check("breaker.all_cooling")
def all_cooling(ctx: CheckContext, slot: int, fault: int = 503) -> Verdict:
    """Every deployment of the model fails with `fault` until none gets traffic (all cooling down);
    the next request is refused at once with the promised status and headers, and reaches no provider."""
    b = ctx.cfg.promises.breaker
    if b is None or b.refusal is None:
        raise Unsupported("the gateway promises nothing about a model whose every deployment is cooling down "
                          "(promises.breaker.refusal)")
    model = ctx.slot("breaker", slot)
    members = [model, *ctx.cfg.promises.fallbacks.get(model, [])]
    tag = ctx.tag()
    for m in members:
        fail_primary(ctx, m, tag, fault)
    t0 = time.monotonic()
    evidence: dict[str, Any] = {"model": model, "fault": fault}
    for i in range(b.opens_after * len(members) + 2):
        before = len(ctx.attempts(tag, members))
        sent_at = time.time()    # wall clock, as the journal's
        ex = ctx.chat(model, tag, prompt=f"Cool me down, request {i}.")
        if len(ctx.attempts(tag, members)) == before:
            break    # nothing reached a provider: every deployment is cooling down
    else:
        evidence["attempts"] = trail(ctx.attempts(tag, members))
        raise Deviation(f"after {b.opens_after} failure(s) of each deployment the providers still got traffic: "
                        "they never all cooled down", evidence)
    entries = ctx.attempts(tag, members)
    evidence.update({"refusal": ex.evidence(), "refusal_headers": ex.headers, "attempts": trail(entries),
                     "cooling_took_s": round(time.monotonic() - t0, 3)})
    # Each deployment began cooling at its last failure: the first of them must not have recovered yet.
    last_failure = {}
    for e in entries:
        last_failure[e["provider"]] = e["t_received"]
    if last_failure and sent_at - min(last_failure.values()) > b.cooldown_s * 0.9:
        raise Unsupported(f"the cooldown ({b.cooldown_s}s) is too short to observe: a deployment may have recovered "
                          f"before every one was cooling", evidence)
    want = b.refusal
    violations = []
    if ex.error or ex.status != want.status:
        violations.append(f"with every deployment cooling down after {fault}s the caller got "
                          f"{ex.error or f'HTTP {ex.status}'}, promised HTTP {want.status}")
    missing = [h for h in want.headers if h.lower() not in ex.headers]
    if missing:
        violations.append(f"the refusal lacks header(s) {missing}")
    if ex.elapsed_s > REFUSAL_PROMPT_S:
        violations.append(f"the refusal took {ex.elapsed_s:.1f}s, not at once")
    return judge(violations, evidence, f"with every deployment cooling down: HTTP {ex.status} with "
                                       f"{want.headers or 'its headers'} in {ex.elapsed_s:.2f}s, no provider called")
