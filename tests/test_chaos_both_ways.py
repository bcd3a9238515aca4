"""Chaos claims, both ways: PASS against a gateway that degrades as promised, FAIL against one
with that promise broken. The faults go through our fault proxy (harness.chaos) between the
faulty gateway and a mock provider, exactly as in a real run. Every scenario ends with a liveness
probe: a gateway whose liveness route dies with the fault (liveness_dies_after_fault) FAILs the
scenario it was otherwise passing.
"""
from __future__ import annotations

import pytest

from faulty_gateway import Running, Spec
from harness import catalog
from harness.chaos.client import ChaosControl
from harness.checks import base
from harness.client.control import ProviderControl
from harness.config import ProviderCfg, parse
from harness.world.fault_proxy import start_fault_proxy
from harness.world.mocks import start_mocks

KEY = "sk-good-key-1234567"
CLAIMS = {c.id: c for c in catalog.load_all(known_checks=set(base.load_all())) if c.lane == "Chaos" and c.check}

# claim id -> the break switch that must turn it to FAIL (None: no natural way to break it here)
BREAKS = {
    "CM-19.1": "no_timeout", "CM-19.2": "no_timeout", "CM-19.3": "stream_fake_complete",
    "CM-19.4": "timeout_too_short", "CM-19.5": "no_timeout", "CM-19.6": "failover_garbage",
    "CM-19.7": "stream_fake_complete", "CM-19.8": None, "CM-19.9": None, "CM-19.10": "sse_per_read",
    "CM-19.11": "stream_fake_complete", "CM-20.1": "stream_fake_complete", "CM-20.2": "stream_fake_complete",
    "CM-20.3": "pass_malformed", "CM-20.4": "keep_upstream_after_disconnect", "CM-19.12": "ws_keep_upstream",
}


# One scenario per chaos check and kind of fault the gateway sees (a reset before the headers, a stream
# cut mid-way, a client gone away, a websocket dropped): each PASSes, but for its liveness probe.
LIVENESS = ("CM-19.6", "CM-20.1", "CM-20.4", "CM-19.12")


def test_every_chaos_claim_with_a_check_is_covered():
    assert set(BREAKS) == set(CLAIMS)
    # the ones without a broken variant are few and named
    assert [k for k, v in BREAKS.items() if v is None] == ["CM-19.8", "CM-19.9"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("chaos")
    mocks, ports = start_mocks([ProviderCfg(name=n, kind="openai") for n in ("ca", "ob")], d)
    fp, api = start_fault_proxy(d, seed=3)
    chaos = ChaosControl(api)
    chaos.create("harness-ca", upstream=f"127.0.0.1:{ports['ca']}")
    yield {"direct": {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}, "chaos": chaos,
           "via_proxy": "http://" + chaos.listen_address("harness-ca")}
    chaos.close()
    fp.stop(grace_s=3)
    mocks.stop(grace_s=3)


def run_claim(claim_id: str, world, breaks: set[str], reset: bool = True, before=None) -> base.Verdict:
    cfg = parse({
        "target": {"name": "faulty", "url": "http://placeholder", "auth": {"key": KEY},
                   "protocols": ["openai_chat", "openai_realtime"]},
        "providers": [{"name": "ca", "kind": "openai"}, {"name": "ob", "kind": "openai"}],
        "models": [{"name": "chaos-model", "provider": "ca"}, {"name": "chaos-backup", "provider": "ob"}],
        "roles": {"chaos": "chaos-model"},
        "defaults": {"openai_model": "chaos-backup"},
        "chaos": {"enabled": True, "providers": ["ca"], "recovery_s": 5},
        "promises": {"fallbacks": {"chaos-model": ["chaos-backup"]}, "failover": {"preset": "5xx-and-429"},
                     "retries": {"count": 1}, "request_timeout_s": 1, "stream_timeout_s": 1, "total_deadline_s": 3,
                     "health": {"liveness_path": "/health/liveliness"}},
    }, "chaos harness.yaml")
    spec = Spec(deployments={"chaos-model": (world["via_proxy"], "chaos-model"),
                             "chaos-backup": (world["direct"]["ob"], "chaos-backup")},
                fallbacks=cfg.promises.fallbacks, keys={KEY}, breaks=breaks)
    gw = Running(spec)
    try:
        cfg.target.url = gw.url
        if before is not None:
            before(gw)
        return gw.judge(cfg, CLAIMS[claim_id], {n: ProviderControl(n, u) for n, u in world["direct"].items()}, KEY,
                        chaos=world["chaos"], chaos_proxies={"ca": "harness-ca"})
    finally:
        if reset:
            world["chaos"].reset()     # whatever the check left, nothing carries over
        gw.stop()


@pytest.mark.parametrize("claim_id", sorted(BREAKS, key=catalog.id_key))
def test_chaos_claim_passes_when_the_gateway_degrades_as_promised(claim_id, world):
    v = run_claim(claim_id, world, set())
    assert v.status == "PASS", (v.status, v.reason, v.evidence)
    probe = v.evidence["liveness"]   # probed after the scenario, on the promised route
    assert probe["path"] == "/health/liveliness" and probe["status"] == 200 and probe["error"] is None, probe


@pytest.mark.parametrize("claim_id", sorted(k for k, v in BREAKS.items() if v))
def test_chaos_claim_fails_when_the_promise_is_broken(claim_id, world):
    v = run_claim(claim_id, world, {BREAKS[claim_id]})
    assert v.status == "FAIL", (BREAKS[claim_id], v.status, v.reason, v.evidence)


def test_checks_lift_their_toxics_even_when_they_fail(world):
    run_claim("CM-19.1", world, {"no_timeout"})
    proxy = world["chaos"].proxy("harness-ca")
    assert proxy.toxics() == {}


def test_a_scenario_is_not_judged_while_the_gateway_does_not_serve_normally(world):
    """The primary is already failing over before any fault (an earlier scenario's aftermath, say):
    the scenario is not run, and its verdict says so instead of blaming the fault."""
    ca = ProviderControl("ca", world["direct"]["ca"])
    ca.script(status=503)            # every request, whatever its tag
    try:
        v = run_claim("CM-19.4", world, set())
    finally:
        ca.clear_script()
    assert v.status == "ERROR" and "not judged" in v.reason, (v.status, v.reason)
    assert "answered by another provider" in v.reason and v.evidence["baseline"]["error"]


def test_a_scenario_through_a_broken_fault_proxy_is_not_judged(world, monkeypatch):
    """A bug in the fault proxy (not a toxic: the proxy itself fails) must not become the gateway's
    FAIL, nor its PASS: the verdict is ERROR, 'not judged: the fault proxy failed', naming it."""
    from test_fault_proxy import InProcessFaultProxy

    from harness.chaos import toxics

    def broken(self, link, chunk):
        raise RuntimeError("a bug in the latency toxic")

    monkeypatch.setattr(toxics.Latency, "chunk", broken)
    inproc = InProcessFaultProxy(seed=3)
    chaos = ChaosControl(inproc.url)
    try:
        chaos.create("harness-ca", upstream=world["direct"]["ca"].split("//")[1])
        broken_world = {**world, "chaos": chaos, "via_proxy": "http://" + chaos.listen_address("harness-ca")}
        v = run_claim("CM-19.4", broken_world, set())
    finally:
        chaos.close()
        inproc.stop()
    assert v.status == "ERROR" and v.reason.startswith("not judged: the fault proxy failed"), (v.status, v.reason)
    assert "RuntimeError: a bug in the latency toxic" in v.reason
    assert v.evidence["fault_proxy_failures"]["count"] >= 1


def test_scenarios_started_at_once_run_one_after_the_other(world, monkeypatch):
    """Workers reaching chaos scenarios at the same time (xdist does not keep `group: chaos` on one
    worker with pytest 9): each holds the fault proxy alone, so a reset meant for one never fails
    another's requests. Without that, CM-19.4 (latency inside the deadline, expected complete)
    loses its connection to CM-19.6's reset and the gateway fails over: a FAIL."""
    import contextlib
    import threading
    import time

    from harness.checks import chaos as chaos_check
    exclusive, held = chaos_check._exclusive, []
    barrier = threading.Barrier(3, timeout=60)

    @contextlib.contextmanager
    def all_at_once(ctx):
        barrier.wait()   # the three reach the fault proxy together
        with exclusive(ctx) as queued:
            t0 = time.monotonic()
            try:
                yield queued
            finally:
                held.append((t0, time.monotonic()))

    monkeypatch.setattr(chaos_check, "_exclusive", all_at_once)
    verdicts: dict[str, base.Verdict] = {}
    errors: list[BaseException] = []

    def run(cid: str) -> None:
        try:
            verdicts[cid] = run_claim(cid, world, set(), reset=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(cid,)) for cid in ("CM-19.6", "CM-19.4", "CM-19.7")]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    finally:
        world["chaos"].reset()
    assert not errors and len(verdicts) == 3, errors
    for cid, v in verdicts.items():
        assert v.status == "PASS", (cid, v.status, v.reason)
    spans = sorted(held)
    assert len(spans) == 3 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans   # one at a time
    assert sorted(v.evidence["queued_for_fault_proxy_s"] > 0 for v in verdicts.values()) == [False, True, True]


@pytest.mark.parametrize("claim_id", LIVENESS)
def test_a_scenario_whose_fault_kills_liveness_fails(claim_id, world):
    """The gateway serves through the fault and recovers as promised, but its liveness route answers 503
    from the fault on: the scenario FAILs with that reason, its own PASS kept in the evidence."""
    v = run_claim(claim_id, world, {"liveness_dies_after_fault"})
    assert v.status == "FAIL", (v.status, v.reason, v.evidence)
    assert v.reason.startswith("after the fault the gateway failed its liveness probe: "
                               "GET /health/liveliness answered HTTP 503"), v.reason
    assert v.evidence["scenario_verdict"]["status"] == "PASS", v.evidence["scenario_verdict"]
    assert v.evidence["liveness"]["status"] == 503


def test_a_scenario_is_not_judged_when_liveness_failed_before_its_fault(world):
    """Liveness already dead (an earlier fault's aftermath): this scenario is not blamed for it."""
    def wedge(gw):
        gw.gateway.faulted = True
    v = run_claim("CM-19.6", world, {"liveness_dies_after_fault"}, before=wedge)
    assert v.status == "ERROR" and v.reason.startswith("not judged: before any fault the gateway failed its liveness"), \
        (v.status, v.reason)


def test_without_a_liveness_route_the_health_route_is_probed(world, monkeypatch):
    """No promises.health.liveness_path: the probe goes to the health route (target.paths.health)."""
    real = parse

    def no_liveness(data, source):
        data["promises"].pop("health", None)
        return real(data, source)
    monkeypatch.setitem(globals(), "parse", no_liveness)
    v = run_claim("CM-19.6", world, {"liveness_dies_after_fault"})
    assert v.status == "FAIL" and "GET /health answered HTTP 503" in v.reason, (v.status, v.reason)
