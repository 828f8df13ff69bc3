"""Retry and error mapping of the shared HTTP client, against a real HTTP server on 127.0.0.1.

The server here is a plain aiohttp app whose handlers fail on purpose (5xx, slow, 4xx); it
stands in for no engine: it exercises the transport rules every server engine relies on.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from agentroll.engines.http import MISSING, HTTPClient, RetryPolicy
from agentroll.engines.launch import free_port
from agentroll.engines.sglang import SGLangEngine
from agentroll.engines.vllm_server import VLLMServerEngine
from agentroll.errors import ContextOverflow, EngineError, EngineRejected, EngineTimeout, EngineUnavailable
from agentroll.types import SamplingParams

FAST = RetryPolicy(attempts=3, backoff_s=0.01)


async def _serve(hits: Counter) -> AsyncIterator[str]:
    async def flaky(request: web.Request) -> web.Response:
        hits["flaky"] += 1
        if hits["flaky"] < 3:
            return web.Response(status=503, text="warming up")
        return web.json_response({"ok": True, "tries": hits["flaky"]})

    async def broken(request: web.Request) -> web.Response:
        hits["broken"] += 1
        return web.Response(status=500, text="engine dead")

    async def bad(request: web.Request) -> web.Response:
        hits["bad"] += 1
        return web.Response(status=400, text="temperature must be >= 0")

    async def too_long(request: web.Request) -> web.Response:
        hits["too_long"] += 1
        return web.Response(status=400, text="This model's maximum context length is 2048 tokens")

    async def slow(request: web.Request) -> web.Response:
        hits["slow"] += 1
        await asyncio.sleep(2)
        return web.json_response({})

    app = web.Application()
    for path, handler in [("/flaky", flaky), ("/broken", broken), ("/bad", bad), ("/too_long", too_long)]:
        app.router.add_post(path, handler)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def run_against_server(check) -> Counter:
    hits: Counter = Counter()

    async def main() -> None:
        gen = _serve(hits)
        url = await gen.__anext__()
        client = HTTPClient(url, retry=FAST)
        try:
            await check(client)
        finally:
            await client.aclose()
            await gen.aclose()

    asyncio.run(main())
    return hits


def test_5xx_is_retried_with_backoff_until_it_succeeds() -> None:
    async def check(client: HTTPClient) -> None:
        assert await client.post_json("/flaky", {}) == {"ok": True, "tries": 3}

    assert run_against_server(check)["flaky"] == 3


def test_persistent_5xx_gives_engine_unavailable_after_bounded_tries() -> None:
    async def check(client: HTTPClient) -> None:
        with pytest.raises(EngineUnavailable, match="engine dead"):
            await client.post_json("/broken", {})

    assert run_against_server(check)["broken"] == FAST.attempts


def test_a_rejected_request_is_never_resent() -> None:
    async def check(client: HTTPClient) -> None:
        with pytest.raises(EngineRejected, match="temperature") as err:  # the request's fault: a 400 upstream
            await client.post_json("/bad", {})
        assert not isinstance(err.value, EngineUnavailable)
        with pytest.raises(ContextOverflow):
            await client.post_json("/too_long", {})

    hits = run_against_server(check)
    assert hits["bad"] == 1 and hits["too_long"] == 1


def test_timeout_is_typed_and_not_retried() -> None:
    async def check(client: HTTPClient) -> None:
        with pytest.raises(EngineTimeout):
            await client.post_json("/slow", {}, timeout=0.3)

    assert run_against_server(check)["slow"] == 1


def test_missing_endpoint_can_be_probed_for_fallback() -> None:
    async def check(client: HTTPClient) -> None:
        assert await client.post_json("/nope", {}, missing_ok=True) is MISSING
        with pytest.raises(EngineError, match="404"):
            await client.post_json("/nope", {})

    run_against_server(check)


def test_server_engines_report_a_dead_address_as_unavailable() -> None:
    port = free_port()  # nothing listens here

    async def main() -> None:
        for engine in (
            VLLMServerEngine(f"http://127.0.0.1:{port}", retry=FAST),
            SGLangEngine(f"http://127.0.0.1:{port}", retry=FAST),
        ):
            assert await engine.health() is False
            with pytest.raises(EngineUnavailable):
                await engine.generate([1, 2, 3], SamplingParams(max_tokens=2))
            await engine.aclose()

    asyncio.run(main())
