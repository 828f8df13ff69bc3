"""`agentroll serve` in front of real vLLM servers (one server, and a pool of two), driven by the openai
SDK: live streaming through /inference/v1/generate, a session's tool loop captured token-exactly, and
the trainer's teacher-forced check on the captured tokens."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from agentroll.server.app import ServerConfig, create_app
from tests.server.helpers import MODEL, NAMED, WEATHER, ask, new_session_id

pytestmark = pytest.mark.slow


def _serve(engine_spec: str) -> Iterator[str]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(ServerConfig(engine=engine_spec, default_max_tokens=32))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def on_one_server(vllm_servers: list[Any]) -> Iterator[str]:
    yield from _serve("vllm://" + vllm_servers[0].url.removeprefix("http://"))


@pytest.fixture(scope="module")
def on_a_pool(vllm_servers: list[Any]) -> Iterator[str]:
    yield from _serve(",".join("vllm://" + s.url.removeprefix("http://") for s in vllm_servers))


def _tool_loop(url: str, *, stream_first: bool) -> tuple[dict, list[int]]:
    """A forced weather call (streamed or not), its result, and a final answer, in one session."""
    sid = new_session_id("vllm")
    sdk = openai.OpenAI(base_url=f"{url}/sessions/{sid}/v1", api_key="none", max_retries=0, timeout=300)
    messages = ask("Paris")
    kwargs = {"model": MODEL, "tools": [WEATHER], "temperature": 0, "extra_body": {"return_token_ids": True}}
    if stream_first:
        chunks = list(sdk.chat.completions.create(messages=messages, tool_choice=NAMED, stream=True, **kwargs))
        args = "".join(d.function.arguments or "" for c in chunks for d in c.choices[0].delta.tool_calls or [])
        call_id = next(d.id for c in chunks for d in c.choices[0].delta.tool_calls or [] if d.id)
        first_ids = next(c.choices[0] for c in chunks if c.choices[0].finish_reason).model_extra["token_ids"]
        answer = {"role": "assistant", "tool_calls": [{"id": call_id, "type": "function",
                  "function": {"name": "get_weather", "arguments": args}}]}  # fmt: skip
    else:
        r = sdk.chat.completions.create(messages=messages, tool_choice=NAMED, **kwargs).choices[0]
        first_ids, answer = r.model_extra["token_ids"], r.message.model_dump(exclude_none=True)
        call_id = r.message.tool_calls[0].id
    assert json.loads(answer["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    messages += [answer, {"role": "tool", "tool_call_id": call_id, "content": "Paris: sun"}]
    second = sdk.chat.completions.create(messages=messages, max_tokens=12, **kwargs).choices[0]
    t = httpx.get(f"{url}/sessions/{sid}/trajectory", timeout=60).json()
    assert [s["reason"] for s in t["segments"]] == ["initial"] and t["metadata"]["drift"] == []
    report = httpx.post(f"{url}/sessions/{sid}/verify", timeout=120).json()
    assert report["ok"], report
    return t, [*first_ids, *second.model_extra["token_ids"]]


def test_a_streamed_tool_loop_on_a_vllm_server_is_captured_token_exactly(on_one_server: str) -> None:
    t, sampled = _tool_loop(on_one_server, stream_first=True)
    seg = t["segments"][0]
    assert [tok for tok, m in zip(seg["token_ids"], seg["loss_mask"], strict=True) if m == 1] == sampled


def test_a_tool_loop_through_a_pool_stays_on_one_server_and_is_captured(on_a_pool: str) -> None:
    t, sampled = _tool_loop(on_a_pool, stream_first=False)
    seg = t["segments"][0]
    assert [tok for tok, m in zip(seg["token_ids"], seg["loss_mask"], strict=True) if m == 1] == sampled
    assert len({turn["meta"].get("pool_server") for turn in t["turns"]}) == 1


def test_stream_from_a_vllm_server_arrives_token_by_token(on_one_server: str) -> None:
    sdk = openai.OpenAI(base_url=f"{on_one_server}/v1", api_key="none", max_retries=0, timeout=300)
    messages = [{"role": "user", "content": "Count from 1 to 40, one number per line."}]
    chunks = list(  # greedy: the count is the same every run
        sdk.chat.completions.create(model=MODEL, messages=messages, max_tokens=48, temperature=0, stream=True)
    )
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 10
