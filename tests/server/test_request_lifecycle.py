"""A request's life at the API edge, with ReplayEngine behind a real app (smollm2 renderer): a client that
hangs up cancels its engine work and records nothing, a default max_tokens shrinks to fit the context,
an answer the engine aborted is an error, and stream_options needs a stream."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from agentroll.engines.launch import free_port
from agentroll.engines.replay import ReplayEngine
from agentroll.renderers import get_renderer
from agentroll.server.app import ServerConfig, create_app
from agentroll.trajectory import Completion
from agentroll.types import Message

SMOLLM2 = get_renderer("smollm2")
HELLO = [{"role": "user", "content": "Say hello."}]
ANSWER = [*SMOLLM2.tokenizer.encode("Hello there, friend."), SMOLLM2.stop_token_ids()[0]]


class SlowEngine(ReplayEngine):
    """Answers after a minute unless cancelled; says when it was."""

    def __init__(self) -> None:
        super().__init__([ANSWER])
        self.started = threading.Event()
        self.cancelled = threading.Event()

    async def generate(self, prompt_ids, sampling, **kw):
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return await super().generate(prompt_ids, sampling, **kw)


@pytest.fixture()
def slow_server():
    engine = SlowEngine()
    server = uvicorn.Server(uvicorn.Config(create_app(ServerConfig(warm_up=False), engine=engine), port=free_port()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}", engine
    finally:
        server.should_exit = True
        thread.join(30)


def test_a_client_that_hangs_up_cancels_the_engine_work_and_its_session_records_nothing(slow_server):
    url, engine = slow_server
    body = {"model": "smollm2", "messages": HELLO, "max_tokens": 8}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/sessions/s1/v1/chat/completions", json=body, timeout=1.0)
    assert engine.started.is_set()
    assert engine.cancelled.wait(10), "the engine call went on after the client left"
    r = httpx.get(f"{url}/sessions/s1/trajectory", timeout=10)
    assert r.status_code == 404 or r.json()["turns"] == []


def _client(engine) -> TestClient:
    return TestClient(create_app(ServerConfig(warm_up=False, default_max_tokens=256), engine=engine))


class LearnsItsWindow(ReplayEngine):
    """Like an HTTP engine: its context window is known only once the server's model list was read."""

    def __init__(self, window: int) -> None:
        super().__init__([ANSWER])  # max_model_len None until models() is read
        self.window = window

    async def models(self) -> list[str]:
        self._max_model_len = self.window
        return await super().models()


def test_a_default_max_tokens_shrinks_to_the_context_left_and_a_given_one_does_not():
    prompt = len(SMOLLM2.render([Message.from_openai(m) for m in HELLO]))
    with _client(LearnsItsWindow(prompt + 3)) as client:  # the very first call already fits
        r = client.post("/v1/chat/completions", json={"model": "smollm2", "messages": HELLO})
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["completion_tokens"] == 3 and r.json()["choices"][0]["finish_reason"] == "length"
        r = client.post("/v1/chat/completions", json={"model": "smollm2", "messages": HELLO, "max_tokens": 50})
        assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"


def test_an_answer_the_engine_aborted_is_an_error_not_a_finished_answer():
    aborted = Completion(ANSWER[:3], finish_reason="abort", meta={"abort_message": "out of KV cache"})
    with _client(ReplayEngine([aborted])) as client:
        r = client.post("/v1/chat/completions", json={"model": "smollm2", "messages": HELLO, "max_tokens": 8})
        assert r.status_code == 503 and "aborted" in r.json()["error"]["message"]
        r = client.post("/v1/completions", json={"model": "smollm2", "prompt": "Hi", "max_tokens": 8})
        assert r.status_code == 503


def test_stream_options_without_a_stream_is_a_400():
    with _client(ReplayEngine([ANSWER])) as client:
        body = {"model": "smollm2", "messages": HELLO, "stream_options": {"include_usage": True}}
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == "stream_options"
        r = client.post("/v1/completions", json={"model": "smollm2", "prompt": "Hi", "stream_options": {}})
        assert r.status_code == 400


def test_a_session_header_on_text_completions_is_refused_not_ignored():
    with _client(ReplayEngine([ANSWER])) as client:
        r = client.post(
            "/v1/completions", json={"model": "smollm2", "prompt": "Hi"}, headers={"X-Agentroll-Session": "s"}
        )
        assert r.status_code == 400 and "chat calls only" in r.json()["error"]["message"]


def test_more_choices_than_the_server_could_ever_admit_is_a_400_not_a_retry_later():
    app = create_app(ServerConfig(warm_up=False, max_concurrency=2, max_queue=1), engine=ReplayEngine([ANSWER]))
    with TestClient(app) as client:
        r = client.post("/v1/chat/completions", json={"model": "smollm2", "messages": HELLO, "n": 4})
        assert r.status_code == 400 and r.json()["error"]["param"] == "n"
