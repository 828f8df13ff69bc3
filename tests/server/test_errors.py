"""Errors are OpenAI-shaped and typed: 400 naming the field, 401, 404, 429, 503 — never a 500.

The app runs in-process in front of a real HTTP engine whose server is not there, so every check
that passes validation ends at the engine boundary (503) instead of generating.
"""

from __future__ import annotations

import asyncio
import socket

import openai
import pytest
from fastapi.testclient import TestClient

from agentroll.engines.http import RetryPolicy
from agentroll.engines.vllm_server import VLLMServerEngine
from agentroll.renderers import get_renderer
from agentroll.server.chat import Generator
from agentroll.server.errors import APIError
from agentroll.server.sessions import SessionStore
from agentroll.types import SamplingParams

from .conftest import MODEL, make_dead_app

USER = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.fixture(scope="module")
def client(dead_app) -> TestClient:
    with TestClient(dead_app) as c:
        yield c


def post(client: TestClient, body: dict, path: str = "/v1/chat/completions"):
    return client.post(path, json={"model": MODEL, "messages": USER, **body})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"temperature": 7}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"n": 0}, "n"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"temperature_typo": 1}, "temperature_typo"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
        ({"messages": [{"role": "user"}]}, "messages[0]"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]}]},
         "messages[0]"),
        ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}]},
         "tools[0].function.parameters"),
        ({"tools": [TOOL, TOOL]}, "tools"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nope"}}}},
         "response_format.json_schema.schema"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"frequency_penalty": 1.0}, "frequency_penalty"),
    ],
)  # fmt: skip
def test_malformed_chat_request_is_400_naming_the_field(client, body, param):
    r = post(client, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param.split(".")[0].split("[")[0] in error["message"]


def test_malformed_text_completion_is_400(client):
    r = client.post("/v1/completions", json={"model": MODEL, "prompt": [1, -5]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
    r = client.post("/v1/completions", json={"model": MODEL, "prompt": "x", "suffix": "y"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "suffix"


def test_unknown_model_is_404(client):
    r = client.post("/v1/chat/completions", json={"model": "gpt-9", "messages": USER})
    assert r.status_code == 404
    assert r.json()["error"]["param"] == "model" and "gpt-9" in r.json()["error"]["message"]


def test_unknown_session_is_404(client):
    calls = (("GET", "/sessions/nope/trajectory"), ("POST", "/sessions/nope/reward"), ("DELETE", "/sessions/nope"))
    calls += (("POST", "/sessions/nope/verify"),)
    for method, path in calls:
        r = client.request(method, path, json={"reward": 1.0})
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "session_not_found"


def test_export_names_the_formats_it_serves(client):
    r = client.get("/sessions/export", params={"format": "hf"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "format" and "verl" in r.json()["error"]["message"]
    assert client.get("/sessions/export").status_code == 200  # no session has sampled: an empty JSONL


def test_dead_engine_is_503_through_the_openai_sdk(client):
    sdk = openai.OpenAI(base_url="http://testserver/v1", api_key="x", http_client=client, max_retries=0)
    with pytest.raises(openai.InternalServerError) as e:
        sdk.chat.completions.create(model=MODEL, messages=USER, max_tokens=4)
    assert e.value.status_code == 503
    assert e.value.body["code"] == "engine_unavailable"
    assert client.get("/health").status_code == 503


def test_a_failed_call_leaves_the_session_untouched(client):
    r = post(client, {"max_tokens": 4}, path="/sessions/s-dead/v1/chat/completions")
    assert r.status_code == 503
    trajectory = client.get("/sessions/s-dead/trajectory").json()
    assert trajectory["segments"] == [] and trajectory["turns"] == []


def test_api_keys_are_enforced_when_configured():
    with TestClient(make_dead_app(api_keys=("k1", "k2"))) as c:
        assert c.get("/v1/models").status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = c.post("/v1/chat/completions", json={"model": MODEL, "messages": USER})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        ok = c.get("/v1/models", headers={"Authorization": "Bearer k2"})
        assert ok.status_code == 200 and ok.json()["data"][0]["id"] == MODEL
        assert c.get("/health").status_code == 503  # health is open: it says the engine is down


def test_a_full_session_store_refuses_new_sessions_with_429():
    with TestClient(make_dead_app(max_sessions=1)) as c:
        assert post(c, {}, path="/sessions/a/v1/chat/completions").status_code == 503  # created; engine down
        assert post(c, {}, path="/sessions/a/v1/chat/completions").status_code == 503  # known session: admitted
        r = post(c, {}, path="/sessions/b/v1/chat/completions")
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_sessions"
        assert c.delete("/sessions/a").status_code == 200
        assert post(c, {}, path="/sessions/b/v1/chat/completions").status_code == 503


def test_saturated_engine_is_429():
    """One slot, no queue: while a request hangs on a server that accepts and never answers, the next is refused."""

    async def scenario() -> None:
        with socket.socket() as hung:
            hung.bind(("127.0.0.1", 0))
            hung.listen(8)
            engine = VLLMServerEngine(f"http://127.0.0.1:{hung.getsockname()[1]}", retry=RetryPolicy(attempts=1))
            gen = Generator(engine, get_renderer("smollm2"), MODEL, SessionStore("smollm2"), max_concurrency=1,
                            max_queue=0)  # fmt: skip
            first = asyncio.create_task(gen.generate([1, 2, 3], SamplingParams(max_tokens=2), 1, None))
            await asyncio.sleep(0.2)
            with pytest.raises(APIError) as e:
                await gen.generate([1, 2, 3], SamplingParams(max_tokens=2), 1, None)
            assert e.value.status == 429
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            await engine.aclose()

    asyncio.run(scenario())
