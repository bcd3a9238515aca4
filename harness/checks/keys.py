"""Client keys through the gateway's admin API (CM-28): a created key is accepted, a revoked or
expired one is refused within the promised bound and never reaches a provider, a key with a budget
is refused once spent, and the spend reported is the provider's usage times the promised price.

The admin API is data in harness.yaml (promises.keys, config.Keys). Every key a check creates is
revoked when it ends, whatever its verdict. Keys (created ones and the admin credential) never
appear in a verdict: its reason and evidence pass a redactor that knows them; and they are shared
with the run's redactors (the world's secrets file), so no file the run writes holds them either.
The HTTP side of the admin API (templates, sending) is harness/client/admin.py.
"""
from __future__ import annotations

import secrets
import time
from typing import Any, Callable, Optional

from harness.checks.base import (CheckContext, Deviation, NotJudged, Outcome, Unsupported, Verdict, check, judge,
                                 poll_until, provider_usage)
from harness.client import admin
from harness.client.http import Exchange
from harness.config import AdminCall, ConfigError, Keys
from harness.oracles import keys as ok
from harness.secrets import Redactor, fingerprint, share

PROBE_EVERY_S = 0.1       # between two requests while waiting for a change to take effect
SPEND_READ_EVERY_S = 0.2  # between two reads of a key's spend while it may still be written
MAX_PROBES = 300          # a bound on any one wait, whatever the timings
SPEND_REQUESTS = 3        # requests whose cost the spend claim adds up
MAX_BUDGET_REQUESTS = 20  # requests the budget claim may spend before it gives up (not judged)
WHAT = {"create": "creating keys through the admin API", "revoke": "revoking keys through the admin API",
        "expiry": "an expiry for keys", "budget": "a budget for keys", "spend": "reading a key's spend"}
CALL_OF = {"create": "create", "revoke": "revoke", "expiry": "create_expiring", "budget": "create_budgeted",
           "spend": "spend"}


def _measure_until(bound_s: float) -> float:
    """How long to keep trying past the bound: long enough to say how late a late change was."""
    return 2 * bound_s + 1


def _rounded(t: Optional[float]) -> Optional[float]:
    return round(t, 3) if t is not None else None


class KeySession:
    """The keys one check creates, the requests sent with each, and their revocation at the end."""

    def __init__(self, ctx: CheckContext, spec: Keys) -> None:
        self.ctx, self.spec = ctx, spec
        self.model = spec.model or ctx.model("openai")
        ctx._use(self.model)
        self.redactor = Redactor()
        self.admin = self._admin_credential()
        self._secret(self.admin)
        self.live: list[str] = []            # created, not yet revoked
        self.tags: dict[str, list[str]] = {}  # key -> the tags of the requests sent with it

    def _admin_credential(self) -> str:
        try:   # `harness run` has checked it already; a world started otherwise may not have
            value = self.spec.admin_credential("harness.yaml")
        except ConfigError as exc:
            raise NotJudged(str(exc)) from None
        if value is not None:
            return value
        self.ctx.require_key("an admin API for client keys")
        assert self.ctx.gateway_key is not None
        return self.ctx.gateway_key

    def _secret(self, secret: str) -> None:
        """A key this check knows: masked in its verdict, and (through the world's secrets file) in
        every file the run writes, the gateway's log above all, which holds whatever the gateway
        logged (a revoke call may put the key in the URL's query). Before it is first used."""
        self.redactor.add(secret)
        if self.ctx.secrets_file:
            share(self.ctx.secrets_file, secret)

    def _headers(self, key: str) -> dict[str, str]:
        auth = self.ctx.cfg.target.auth
        return auth.headers(key) if auth.takes_key else {"Authorization": f"Bearer {key}"}

    # -- the admin API ------------------------------------------------------------------------
    def call(self, name: str, call: AdminCall, **values: Any) -> tuple[Exchange, Any]:
        values = {"alias": f"harness-{self.ctx.claim_id or 'keys'}", **values}
        try:
            return admin.send(self.ctx.gateway, name, call, values, self._headers(self.admin))
        except admin.AdminError as exc:   # the premise (a working admin API) failed: not judged
            raise NotJudged(exc.reason, exc.said) from None

    def create(self, name: str = "create", **values: Any) -> tuple[str, float]:
        """A new key (made by the harness, or read from the answer) and when the admin API answered."""
        call: AdminCall = getattr(self.spec, name)
        made = "sk-harness-" + secrets.token_hex(16)   # looks like a key: any redactor masks it
        self._secret(made)
        ex, answer = self.call(name, call, key=made, **values)
        t = time.monotonic()
        key = admin.dig(answer, call.field) if call.field else made
        if not isinstance(key, str) or not key:
            raise NotJudged(f"the admin API's {name} answer has no key at {call.field!r}", {"admin_call": admin.said(ex)})
        self._secret(key)   # a gateway-made key may look like anything: only a redactor told of it masks it
        self.live.append(key)
        self.tags[key] = []
        return key, t

    def revoke(self, key: str) -> float:
        assert self.spec.revoke is not None
        self.call("revoke", self.spec.revoke, key=key)
        self.live.remove(key)
        return time.monotonic()

    def spend(self, key: str) -> Any:
        assert self.spec.spend is not None and self.spec.spend.field is not None
        _, answer = self.call("spend", self.spec.spend, key=key)
        return admin.dig(answer, self.spec.spend.field)

    def cleanup(self) -> dict[str, Any]:
        """Revokes every key still live and waits for the revocation to settle; says what it could not.

        Settling keeps one claim's last change out of the next claim's first: a gateway that applies a
        saved change by reloading its config may lose a change saved while a reload runs (one of the
        built-in targets does: README, the CM-28 row of the side-by-side table), and then a key created
        just after another claim's revocation is never accepted, which is not what that claim is
        about. The wait: until the key is refused, then `within_s` more."""
        failed, settled = [], True
        for key in list(self.live):
            try:
                t0 = self.revoke(key)
            except Outcome as exc:
                failed.append({"key": "#" + fingerprint(key), "why": exc.reason})
                continue
            refusals = self.probe_until(key, t0, lambda p: p.status in (401, 403), _measure_until(self.spec.within_s))
            settled = settled and refusals[-1].status in (401, 403)
        if self.tags:   # something was changed: let the last change finish before another claim's
            time.sleep(self.spec.within_s)
        return {"revoked_at_end": "all created keys" if not failed else "some could not be", "failed": failed,
                "revocations_took_effect": settled}

    # -- requests with a key ------------------------------------------------------------------
    def send(self, key: str) -> tuple[Exchange, str]:
        tag = self.ctx.tag()
        self.tags[key].append(tag)
        body = {"model": self.model, "messages": [{"role": "user", "content": f"Say something. [h:{tag}]"}]}
        ex = self.ctx.gateway.request("POST", self.ctx.path("chat", self.model), body,
                                      headers={**self.ctx.model_headers(self.model), **self._headers(key)}, auth=False)
        return ex, tag

    def reached(self, tag: str) -> list[dict[str, Any]]:
        return [e for p in self.ctx.providers.values() for e in p.journal(tag=tag)]

    def probe(self, key: str, t0: float) -> ok.Probe:
        ex, tag = self.send(key)
        return ok.Probe(time.monotonic() - t0, ex.status, bool(self.reached(tag)), ex.error)

    def probe_until(self, key: str, t0: float, done: Callable[[ok.Probe], bool], until_s: float) -> list[ok.Probe]:
        """Requests with the key, one after another, until `done` or `until_s` after t0."""
        return poll_until(lambda: self.probe(key, t0), done, until_s, PROBE_EVERY_S, since=t0,
                          max_polls=MAX_PROBES).results

    def until_accepted(self, key: str, t0: float) -> list[ok.Probe]:
        return self.probe_until(key, t0, lambda p: p.status is not None and 200 <= p.status < 300,
                                _measure_until(self.spec.within_s))

    def until_refused(self, key: str, t0: float, refused: Any) -> list[ok.Probe]:
        """Until refused, then one request more: a refusal must last."""
        probes = self.probe_until(key, t0, lambda p: p.status in refused, _measure_until(self.spec.within_s))
        if probes[-1].status in refused:
            time.sleep(PROBE_EVERY_S)
            probes.append(self.probe(key, t0))
        return probes

    def usage_cost(self, key: str) -> tuple[float, list[dict[str, Any]]]:
        """What the key's requests cost at the provider: the journal's usage times the promised price."""
        assert self.spec.price is not None
        usages = []
        for tag in self.tags[key]:
            for e in self.reached(tag):
                u = provider_usage(e)
                if ok.tokens(u, "prompt_tokens") is None or ok.tokens(u, "completion_tokens") is None:
                    raise NotJudged("a provider answer with this key has no usage in the journal to price")
                usages.append(u)
        return ok.cost(usages, self.spec.price.input, self.spec.price.output), usages


def _spec(ctx: CheckContext, *ops: str) -> Keys:
    spec = ctx.cfg.promises.keys
    if spec is None:
        raise Unsupported("the gateway declares no admin API for client keys (promises.keys)")
    for op in ops:
        if getattr(spec, CALL_OF[op]) is None:
            why = spec.why_not(op)
            raise Unsupported(f"{WHAT[op]} is not offered: {why}" if why else
                              f"{WHAT[op]}: no call declared (promises.keys.{CALL_OF[op]})")
    return spec


def _session(ctx: CheckContext, ops: tuple[str, ...], body: Callable[[KeySession], Verdict]) -> Verdict:
    """Runs `body` with a key session; every key it created is revoked at the end, whatever happens,
    and no key it knows reaches the verdict."""
    spec = _spec(ctx, *ops, "revoke")     # nothing is created that cannot be revoked
    keys = KeySession(ctx, spec)
    try:
        verdict = body(keys)
    except Outcome as exc:
        exc.evidence["cleanup"] = keys.cleanup()
        exc.reason, exc.evidence = keys.redactor.text(exc.reason), keys.redactor.data(exc.evidence)
        raise
    except BaseException:
        keys.cleanup()
        raise
    cleanup = keys.cleanup()
    verdict.evidence["cleanup"] = cleanup
    if cleanup["failed"]:
        verdict.reason += f" (but {len(cleanup['failed'])} created key(s) could not be revoked at the end)"
    verdict.reason, verdict.evidence = keys.redactor.text(verdict.reason), keys.redactor.data(verdict.evidence)
    return verdict


def _accepted(keys: KeySession, key: str, t0: float, what: str) -> list[ok.Probe]:
    """The new key works before anything else is tried with it (else the claim has no premise)."""
    probes = keys.until_accepted(key, t0)
    if ok.first_accepted(probes) is None:
        raise NotJudged(f"the created key was never accepted ({probes[-1].status} {probes[-1].t_s:.2f}s after "
                        f"{what}): nothing to judge (CM-28.1 says more)", {"probes": [p.summary() for p in probes]})
    return probes


def _refused(keys: KeySession, key: str, t0: float, refused: set[int], subject: str, since: str,
             evidence: dict[str, Any]) -> Verdict:
    """After `since` (at t0), requests with the key until it is refused (a status in `refused`) and once
    more; judged by ok.refusal: within the bound, lasting, never forwarded. The revoked, expired and
    spent-budget claims differ only in what came before."""
    probes = keys.until_refused(key, t0, refused)
    violations, t_refused = ok.refusal(probes, keys.spec.within_s, refused, since)
    evidence = {"key": "#" + fingerprint(key), **evidence, "probes": [p.summary() for p in probes],
                "refused_after_s": _rounded(t_refused), "bound_s": keys.spec.within_s,
                "refusal_statuses": sorted(refused)}
    return judge(violations, evidence, f"{subject} was refused (HTTP {probes[-1].status}) {t_refused or 0:.2f}s after "
                 f"{since} (bound {keys.spec.within_s:g}s), and no refused request reached a provider")


@check("keys.created")
def created(ctx: CheckContext) -> Verdict:
    def body(keys: KeySession) -> Verdict:
        key, t0 = keys.create()
        probes = keys.until_accepted(key, t0)
        first = ok.first_accepted(probes)
        evidence = {"key": "#" + fingerprint(key), "probes": [p.summary() for p in probes],
                    "accepted_after_s": round(first.t_s, 3) if first else None}
        return judge(ok.acceptance(probes, keys.spec.within_s, "the admin API created it"), evidence,
                     f"the created key was accepted {first.t_s:.2f}s after the admin API answered (bound "
                     f"{keys.spec.within_s:g}s), and its request reached the provider" if first else "")
    return _session(ctx, ("create",), body)


@check("keys.revoked")
def revoked(ctx: CheckContext) -> Verdict:
    def body(keys: KeySession) -> Verdict:
        key, t_made = keys.create()
        before = _accepted(keys, key, t_made, "the admin API created it")
        t0 = keys.revoke(key)
        return _refused(keys, key, t0, set(ctx.cfg.promises.auth.statuses), "the revoked key", "the revocation",
                        {"accepted_before": before[-1].summary()})
    return _session(ctx, ("create",), body)


@check("keys.expired")
def expired(ctx: CheckContext) -> Verdict:
    def body(keys: KeySession) -> Verdict:
        life = keys.spec.expires_s
        key, t_made = keys.create("create_expiring", expires_s=life)
        before = keys.probe_until(key, t_made, lambda p: p.status is not None and 200 <= p.status < 300, life)
        if ok.first_accepted(before) is None or before[-1].t_s >= life:
            raise NotJudged(f"the key was not shown to work before its {life:g}s expiry "
                            f"(last: HTTP {before[-1].status} after {before[-1].t_s:.2f}s): lengthen "
                            "promises.keys.expires_s", {"probes": [p.summary() for p in before]})
        time.sleep(max(0.0, t_made + life - time.monotonic()))
        t0 = t_made + life          # its expiry, counted from the admin API's answer: never early for the gateway
        return _refused(keys, key, t0, set(ctx.cfg.promises.auth.statuses), f"the key made to expire in {life:g}s",
                        "its expiry", {"expires_s": life, "accepted_before": before[-1].summary()})
    return _session(ctx, ("expiry",), body)


@check("keys.budget")
def budget(ctx: CheckContext) -> Verdict:
    def body(keys: KeySession) -> Verdict:
        limit = keys.spec.budget
        assert limit is not None
        key, t_made = keys.create("create_budgeted", budget=limit)
        _accepted(keys, key, t_made, "the admin API created it")
        spent, _ = keys.usage_cost(key)
        answers = []
        while spent < limit:
            if len(answers) >= MAX_BUDGET_REQUESTS:
                raise NotJudged(f"{MAX_BUDGET_REQUESTS} requests spent {spent:.10g} of the {limit:g} budget: lower "
                                "promises.keys.budget", {"statuses": answers})
            ex, _ = keys.send(key)
            answers.append(ex.status)
            if ex.status is None or not 200 <= ex.status < 300:
                raise Deviation(f"the key was refused (HTTP {ex.status}) when it had spent {spent:.10g} of its "
                                f"{limit:g} budget", {"statuses": answers, "spent": spent, "budget": limit})
            spent, _ = keys.usage_cost(key)
        # Only the promised refusals count (promises.keys.budget_statuses): any 4xx let a 404 or a
        # validation error pass for the budget's refusal.
        return _refused(keys, key, time.monotonic(), set(keys.spec.budget_statuses), "the key",
                        f"its spend ({spent:.10g}) reached the budget ({admin.text(limit)})",
                        {"budget": limit, "spent_when_reached": spent, "accepted_before": answers})
    return _session(ctx, ("budget",), body)


@check("keys.spend")
def spend(ctx: CheckContext) -> Verdict:
    def body(keys: KeySession) -> Verdict:
        key, t_made = keys.create()
        _accepted(keys, key, t_made, "the admin API created it")
        for _ in range(SPEND_REQUESTS):
            ex, _ = keys.send(key)
            if ex.status is None or not 200 <= ex.status < 300:
                raise NotJudged(f"a request with the new key got HTTP {ex.status}: no spend to compare")
        expected, usages = keys.usage_cost(key)
        t0 = time.monotonic()
        tolerance = keys.spec.spend_tolerance
        readings = []

        def read() -> tuple[Any, list[str]]:
            reported = keys.spend(key)
            readings.append({"t_s": round(time.monotonic() - t0, 3), "spend": reported})
            return reported, ok.spend_matches(reported, expected, tolerance)
        # Spend may be written after the answer: it is read until it matches or the bound passes.
        reported, violations = poll_until(read, lambda r: not r[1], keys.spec.within_s, SPEND_READ_EVERY_S,
                                          since=t0, max_polls=MAX_PROBES).last
        price = keys.spec.price
        assert price is not None
        evidence = {"key": "#" + fingerprint(key), "expected": expected, "reported": reported, "readings": readings,
                    "usages": usages, "price": price.model_dump(), "tolerance": tolerance, "bound_s": keys.spec.within_s}
        return judge(violations, evidence, f"the reported spend {reported} is the provider's usage times the price "
                     f"({expected:.10g}, {len(usages)} answers) within {tolerance:.1%}")
    return _session(ctx, ("create", "spend"), body)
