"""The review of a verdict against the providers' journals (harness/checks/routing.py), both ways:
a route the mock does not serve makes the claim ERROR "not judged" naming the route (a FAIL and a
PASS alike), a route without what the claim needs makes it UNSUPPORTED, a request that never reached
its model's provider is said in the reason; and with none of these the verdict is left as it was.

The gateway here is a relay (test equipment): it sends each chat request, unchanged, to the
provider URL and path the test sets for the model, and hands back what it got. The checks are
the harness's own (CM-16.1's upstream.single_attempt, CM-10.1.11's openai_chat.tool_calls), run
through base.run exactly as the pytest plugin runs them."""
from __future__ import annotations

import asyncio
import threading

import aiohttp
import pytest
from aiohttp import web

from harness.checks import base
from harness.client.control import ProviderControl
from harness.client.http import GatewayClient
from harness.config import ProviderCfg, parse
from harness.results.record import Status
from harness.world.mocks import start_mocks


class Relay:
    """model -> (provider base URL, path) or None (answer by itself, reaching no provider)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, str] | None] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        self.url = f"http://127.0.0.1:{self.port}"

    async def _start(self) -> int:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        route = self.routes[body["model"]]
        if route is None:
            return web.json_response({"id": "chatcmpl-relay", "object": "chat.completion", "created": 1, "model": "x",
                                      "choices": [{"index": 0, "finish_reason": "stop",
                                                   "message": {"role": "assistant", "content": "made up"}}]})
        base_url, path = route
        async with self.session.post(base_url + path, json=body) as r:
            return web.Response(body=await r.read(), status=r.status, content_type="application/json")

    def stop(self) -> None:
        async def close() -> None:
            await self.runner.cleanup()
            await self.session.close()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    child, ports = start_mocks([ProviderCfg(name=n, kind="openai") for n in ("pa", "pb", "pc")],
                               tmp_path_factory.mktemp("mocks"))
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    relay = Relay()
    cfg = parse({
        "target": {"name": "relay", "url": relay.url, "auth": {"key": "sk-relay-test-key"}},
        "providers": [{"name": n, "kind": "openai"} for n in urls],
        "models": [{"name": "gpt-a", "provider": "pa"}, {"name": "gpt-b", "provider": "pb"},
                   {"name": "gpt-c", "provider": "pc"}],
        "defaults": {"openai_model": "gpt-a"},
        "promises": {"fallbacks": {"gpt-a": ["gpt-b"]}},
    }, "relay harness.yaml")
    client = GatewayClient(relay.url, "Authorization", "Bearer sk-relay-test-key", read_s=10, request_s=15, stream_s=15)
    providers = {n: ProviderControl(n, u) for n, u in urls.items()}
    yield {"urls": urls, "relay": relay, "cfg": cfg, "client": client, "providers": providers}
    client.close()
    relay.stop()
    child.stop(grace_s=3)


@pytest.fixture(autouse=True)
def fresh_journals(world):
    """Each test starts from empty journals: an unserved call weighs on every later claim on its
    provider's models, as it does in a run."""
    for ctl in world["providers"].values():
        ctl.clear_journal()
        ctl.clear_script()


def run(world, check: str, params: dict | None = None) -> base.Verdict:
    base.load_all()
    ctx = base.CheckContext(world["cfg"], world["client"], world["providers"], "sk-relay-test-key", "CM-T.1")
    return base.run(ctx, check, params or {})


def route(world, model: str, provider: str | None, path: str = "/v1/chat/completions") -> None:
    world["relay"].routes[model] = None if provider is None else (world["urls"][provider], path)


def test_a_served_route_leaves_pass_and_fail_alone(world):
    route(world, "gpt-a", "pa")
    ok = run(world, "upstream.single_attempt")
    assert ok.status == Status.PASS and "not judged" not in ok.reason and "routing" not in ok.evidence
    route(world, "gpt-a", "pa", "/v1/responses")   # a served route the chat body is invalid on: the provider's 400
    bad = run(world, "upstream.single_attempt")
    assert bad.status == Status.FAIL and bad.reason.startswith("expected a 2xx answer, got HTTP 400"), bad.reason
    assert "routing" not in bad.evidence and "unserved" not in bad.evidence


def test_an_unserved_route_makes_a_fail_not_judged_naming_the_route(world):
    route(world, "gpt-a", "pa", "/v1/chat/complete")   # a typo of a gateway: the mock does not serve it
    v = run(world, "upstream.single_attempt")
    assert v.status == Status.ERROR
    assert v.reason == ("not judged: the gateway called POST /v1/chat/complete on provider pa (openai), which the "
                        "mock does not serve: claims on its models (gpt-a) are not judged"), v.reason
    assert v.evidence["verdict_before_review"]["status"] == "FAIL"
    assert v.evidence["unserved"][0]["path"] == "/v1/chat/complete" and v.evidence["unserved"][0]["status"] == 404


def test_an_earlier_unserved_call_at_the_models_provider_undoes_a_later_claim(world):
    """A gateway that got the 404 may send the model's requests elsewhere since (a cooldown): the
    claims on that provider's models stay not judged, though their own requests avoid the route."""
    route(world, "gpt-a", "pa", "/v1/chat/complete")
    assert run(world, "upstream.single_attempt").status == Status.ERROR
    route(world, "gpt-a", "pb")          # "cooled down": gpt-a now goes to its fallback's provider
    later = run(world, "upstream.single_attempt")
    assert later.status == Status.ERROR and "POST /v1/chat/complete on provider pa" in later.reason
    assert later.evidence["verdict_before_review"]["reason"] == "the provider got 0 requests for one client request"
    assert later.evidence["routing"]["notes"] == [
        "gpt-a's request never reached its provider pa: it went to pb, the provider of its fallback gpt-b"]
    # Claims on other providers' models are not touched by it.
    world["cfg"].defaults.openai_model = "gpt-c"
    try:
        route(world, "gpt-c", "pc")
        assert run(world, "upstream.single_attempt").status == Status.PASS
    finally:
        world["cfg"].defaults.openai_model = "gpt-a"


def test_an_unserved_route_also_undoes_a_pass(world):
    """A script makes the served route answer as unserved once: the relay's fallback-free PASS of a
    check that tolerates the 404 would rest on the gap, so it is not judged either."""
    route(world, "gpt-a", "pa")
    base.load_all()

    @base.check("test.tolerant_probe")
    def tolerant(ctx: base.CheckContext) -> base.Verdict:
        tag = ctx.tag()
        ctx.provider_of("gpt-a").script(tag=tag, unserved=True, times=1)
        ctx.chat(ctx.model("openai"), tag)
        return base.Verdict(Status.PASS, "anything goes")

    try:
        v = run(world, "test.tolerant_probe")
    finally:
        base.REGISTRY.pop("test.tolerant_probe")
    assert v.status == Status.ERROR and "POST /v1/chat/completions on provider pa" in v.reason
    assert v.evidence["verdict_before_review"] == {"status": "PASS", "reason": "anything goes"}


def test_a_route_without_tools_makes_a_tool_claim_unsupported(world):
    # The legacy completions API has no tools (the mock, like OpenAI, refuses them with a 400).
    route(world, "gpt-a", "pa", "/v1/completions")
    v = run(world, "openai_chat.tool_calls", {"parallel": True})
    assert v.status == Status.UNSUPPORTED, (v.status, v.reason)
    assert v.reason.startswith("the gateway sent this claim's request to POST /v1/completions on provider pa (openai), "
                               "a route of that API without tool calls or parallel tool calls"), v.reason
    assert v.evidence["verdict_before_review"]["status"] == "FAIL"
    # Both ways: the chat route has tools, so the same claim is judged (and passes).
    route(world, "gpt-a", "pa")
    assert run(world, "openai_chat.tool_calls", {"parallel": True}).status == Status.PASS


def test_a_request_answered_by_the_fallbacks_provider_says_so(world):
    route(world, "gpt-a", "pb")          # gpt-a's request lands at pb, the provider of its fallback gpt-b
    v = run(world, "upstream.single_attempt")
    assert v.status == Status.FAIL and v.reason.startswith("the provider got 0 requests for one client request")
    assert "(gpt-a's request never reached its provider pa: it went to pb, the provider of its fallback gpt-b)" in v.reason
    (e,) = v.evidence["routing"]["journal"]
    assert e["provider"] == "pb" and e["path"] == "/v1/chat/completions" and e["status"] == 200


def test_a_request_answered_by_another_provider_or_by_nobody_says_so(world):
    route(world, "gpt-a", "pc")
    other = run(world, "upstream.single_attempt")
    assert "it went to pc, another provider (of gpt-c)" in other.reason, other.reason
    route(world, "gpt-a", None)          # the relay answers by itself
    nobody = run(world, "upstream.single_attempt")
    assert nobody.status == Status.FAIL
    assert "gpt-a's request never reached its provider pa: no mock provider got it" in nobody.reason, nobody.reason
    assert nobody.evidence["routing"]["journal"] == []
