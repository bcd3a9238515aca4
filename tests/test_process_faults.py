"""The process claims (matrices/process) both ways: PASS against a gateway process that keeps the
promise, FAIL with the reason against one that breaks it (tests/process_gateway.py, one switch per
broken promise). The gateway runs as a real process, killed and started again, or measured, through
the world's control endpoint (harness/world/control.py), exactly as in a run."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import catalog
from harness.checks import base
from harness.client.http import GatewayClient
from harness.client.process import ProcessControl
from harness.config import parse
from harness.paths import MATRICES
from harness.world.control import ControlServer, GatewayProcess
from harness.world.gateway import Launch, wait_ready
from harness.world.processes import Child, free_port

EQUIPMENT = Path(__file__).resolve().parent / "process_gateway.py"
CHECKS = base.load_all()
CLAIMS = {c.id: c for c in catalog.load_file(MATRICES / "process" / "26-process-faults.yaml")}
DRAIN_S = 4.0   # the promised drain timeout: short, so that a gateway ignoring SIGTERM is found fast
# The promised growth across the claims' soak (200 requests after a warm-up of 40): the reference
# gateway stays well inside; a leak per request grows by about 200 descriptors or threads, 40 MiB.
GROWTH = {"rss_growth_mb_per_1000": 25.0, "fd_growth_max": 4, "thread_growth_max": 4}
LEAK_PER_REQUEST = {"rss": 200 / 1024, "fds": 1, "threads": 1}   # what each leak switch keeps (MiB, count)

# claim id -> [(switch that breaks the promise, a phrase of the reason)]
BREAKS = {
    "CM-26.1": [("stale_lock", "did not start again")],
    "CM-26.2": [("replay", "billed twice")],
    "CM-26.3": [("sigterm_cuts", "did not complete"), ("ignores_sigterm", "still ran")],
    "CM-26.4": [("sigterm_cuts", "did not complete"), ("ignores_sigterm", "still ran")],
    "CM-26.5": [("leak_memory", "resident memory went from")],
    "CM-26.6": [("leak_fds", "open file descriptors went from")],
    "CM-26.7": [("leak_threads", "threads went from")],
}


def test_every_process_claim_is_tested_both_ways():
    assert set(BREAKS) == set(CLAIMS)


def _config(url: str, drains: bool = True, growth: bool = True):
    return parse({
        "target": {"name": "process-gateway", "url": url, "auth": {"key": "sk-unused-1234"}},
        "providers": [{"name": "oa", "kind": "openai"}, {"name": "an", "kind": "anthropic"}],
        "models": [{"name": "gpt-mock", "provider": "oa", "upstream_model": "gpt-4o-mini"}],
        "defaults": {"openai_model": "gpt-mock"},
        "promises": {"process": {"drains_on_sigterm": drains, "drain_timeout_s": DRAIN_S,
                                 **(GROWTH if growth else {})}},
    }, "process harness.yaml")


def _judge(claim_id: str, tmp_path: Path, mocks, breaks: tuple[str, ...] = (), *, drains: bool = True,
           growth: bool = True, control: bool = True) -> base.Verdict:
    return _judge_in_turn([claim_id], tmp_path, mocks, breaks, drains=drains, growth=growth, control=control)[0]


def _judge_in_turn(claim_ids: list[str], tmp_path: Path, mocks, breaks: tuple[str, ...] = (), *, drains: bool = True,
                   growth: bool = True, control: bool = True) -> list[base.Verdict]:
    """The claims one after another against one gateway process, as the Process lane runs them."""
    port = free_port()
    argv = [sys.executable, str(EQUIPMENT), "--port", str(port), "--upstream", mocks["urls"]["oa"],
            "--state", str(tmp_path / "state"), *[a for b in breaks for a in ("--break", b)]]
    url = f"http://127.0.0.1:{port}"
    launch = Launch(argv, {}, tmp_path, url + "/health", 20, None, 5)
    process = GatewayProcess(Child("gateway", argv, log_path=tmp_path / "gateway.log", cwd=tmp_path), launch)
    server = ControlServer(process)
    ctl = ProcessControl(server.url, server.token, restart_timeout_s=20)
    try:
        wait_ready(launch.ready_url, 20, process.child)
        cfg = _config(url, drains, growth)
        client = GatewayClient(url, "Authorization", "Bearer sk-unused-1234", read_s=20, request_s=30, stream_s=30)
        verdicts = []
        for claim_id in claim_ids:
            ctx = base.CheckContext(cfg, client, {"oa": mocks["oa"], "an": mocks["an"]}, "sk-unused-1234", claim_id)
            ctx.process = ctl if control else None
            claim = CLAIMS[claim_id]
            verdicts.append(base.run(ctx, claim.check, dict(claim.params)))
        return verdicts
    finally:
        ctl.close()
        server.close()
        process.stop(grace_s=2)


@pytest.mark.parametrize("claim_id", sorted(CLAIMS, key=catalog.id_key))
def test_claim_passes_when_the_gateway_keeps_the_promise(claim_id, tmp_path, mocks):
    v = _judge(claim_id, tmp_path, mocks)
    assert v.status == "PASS", (v.status, v.reason, v.evidence)


@pytest.mark.parametrize("claim_id,switch,phrase", [(c, s, p) for c in sorted(BREAKS, key=catalog.id_key)
                                                    for s, p in BREAKS[c]])
def test_claim_fails_when_the_promise_is_broken(claim_id, switch, phrase, tmp_path, mocks):
    v = _judge(claim_id, tmp_path, mocks, (switch,))
    assert v.status == "FAIL", (v.status, v.reason, v.evidence)
    assert phrase in v.reason, v.reason
    if CLAIMS[claim_id].check == "process.resource_growth":   # the growth itself: about one leak per request
        resource = CLAIMS[claim_id].params["resource"]
        grown = v.evidence["growth"]["rss_mb" if resource == "rss" else resource] / v.evidence["requests"]
        assert grown > LEAK_PER_REQUEST[resource] / 2 and "beyond the promised" in v.reason, (grown, v.reason)


def test_a_gateway_the_harness_did_not_start_is_unsupported(tmp_path, mocks):
    v = _judge("CM-26.1", tmp_path, mocks, control=False)
    assert v.status == "UNSUPPORTED" and "did not start this gateway" in v.reason, v.reason


def test_draining_not_promised_is_unsupported(tmp_path, mocks):
    v = _judge("CM-26.3", tmp_path, mocks, drains=False)
    assert v.status == "UNSUPPORTED" and "drains_on_sigterm" in v.reason, v.reason


def test_growth_not_promised_is_unsupported_with_what_was_measured(tmp_path, mocks):
    v = _judge("CM-26.6", tmp_path, mocks, growth=False)
    assert v.status == "UNSUPPORTED" and "promises.process.fd_growth_max" in v.reason, v.reason
    assert "measured: open file descriptors went from" in v.reason, v.reason
    claim = CLAIMS["CM-26.6"]
    assert len(v.evidence["samples"]) == claim.params.get("rounds", 5) + 1, v.evidence
    assert set(v.evidence["growth"]) == {"rss_mb", "rss_mb_per_1000", "fds", "threads"}, v.evidence


def test_a_resource_claim_names_a_known_resource_and_a_bounded_soak():
    from harness.checks.params import problem
    fn = CHECKS["process.resource_growth"]
    assert problem(fn, {"resource": "disk"}).startswith("params.resource"), problem(fn, {"resource": "disk"})
    assert "from 10 to 2000" in problem(fn, {"resource": "fds", "requests": 100_000})
    assert "more rounds than requests" in problem(fn, {"resource": "fds", "requests": 10, "rounds": 20})
    assert problem(fn, {"resource": "threads", "warmup": 10, "requests": 50, "rounds": 2, "concurrency": 2}) is None


def test_the_gateway_pid_is_the_process_the_world_started(tmp_path):
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    process = GatewayProcess(Child("gateway", argv, log_path=tmp_path / "g.log"), Launch(argv, {}, tmp_path, "", 5, None, 1))
    server = ControlServer(process)
    ctl = ProcessControl(server.url, server.token, restart_timeout_s=5)
    try:
        assert ctl.pid() == process.child.pid
        ctl.signal("KILL")
        assert ctl.wait_exit(5) is not None
        assert ctl.pid() is None
    finally:
        ctl.close()
        server.close()
        process.stop(grace_s=1)


def test_the_control_endpoint_refuses_a_caller_without_the_token(tmp_path, mocks):
    import httpx
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    process = GatewayProcess(Child("gateway", argv, log_path=tmp_path / "g.log"), Launch(argv, {}, tmp_path, "", 5, None, 1))
    server = ControlServer(process)
    try:
        r = httpx.post(server.url + "/gateway/signal", json={"signal": "KILL"}, trust_env=False, timeout=5)
        assert r.status_code == 403
        assert process.child.alive()
    finally:
        server.close()
        process.stop(grace_s=1)


def test_the_resource_claims_of_one_gateway_process_share_one_soak(tmp_path, mocks):
    mem, fds, threads = _judge_in_turn(["CM-26.5", "CM-26.6", "CM-26.7"], tmp_path, mocks)
    assert {v.status for v in (mem, fds, threads)} == {"PASS"}, [(v.status, v.reason) for v in (mem, fds, threads)]
    assert "soak_shared_with" not in mem.evidence
    assert fds.evidence["soak_shared_with"] == threads.evidence["soak_shared_with"] == "CM-26.5"
    assert fds.evidence["samples"] == mem.evidence["samples"]
    # one soak reached the provider, not three: the warm-up and the soak of the first claim only
    sent = CLAIMS["CM-26.5"].params.get("warmup", 40) + CLAIMS["CM-26.5"].params.get("requests", 200)
    assert fds.evidence["soak_tag"] == mem.evidence["soak_tag"]
    assert len(mocks["oa"].journal(tag=mem.evidence["soak_tag"])) == sent
