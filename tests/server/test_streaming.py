"""`stream: true` against a real `agentroll serve` (embedded vLLM engine): tokens reach the client while
the model samples, streamed tool calls and sessions record the same tokens as non-streamed ones, and
response_format json_schema is enforced by the engine's guided decoding."""

from __future__ import annotations

import json
import time

import httpx
import jsonschema
import openai
import pytest

from .helpers import MODEL, NAMED, WEATHER, ask, new_session_id

pytestmark = pytest.mark.slow
COUNT = [{"role": "user", "content": "Count from 1 to 60, one number per line."}]


@pytest.fixture(scope="module")
def sdk(live_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key="none", max_retries=0, timeout=300)


def test_the_first_tokens_arrive_while_the_model_is_still_sampling(sdk):
    started = time.monotonic()
    arrivals, text = [], ""
    stream = sdk.chat.completions.create(model=MODEL, messages=COUNT, max_tokens=96, temperature=0, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
            text += chunk.choices[0].delta.content
    total = time.monotonic() - started
    assert len(arrivals) >= 20, text  # one chunk per decoded token, not one lump at the end
    assert arrivals[0] < 0.5 * total, (arrivals[0], total)  # the first came long before the last was sampled


def test_streamed_logprobs_and_token_ids_equal_the_non_streamed_answer(sdk):
    kwargs = {"model": MODEL, "messages": COUNT, "max_tokens": 24, "temperature": 0, "logprobs": True}
    kwargs["extra_body"] = {"return_token_ids": True}
    whole = sdk.chat.completions.create(**kwargs).choices[0]
    chunks = list(sdk.chat.completions.create(**kwargs, stream=True))
    entries = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content or []]
    last = next(c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason)
    assert last.model_extra["token_ids"] == whole.model_extra["token_ids"]
    assert last.model_extra["prompt_token_ids"] == whole.model_extra["prompt_token_ids"]
    assert [e.token for e in entries] == [e.token for e in whole.logprobs.content]
    assert [e.logprob for e in entries] == pytest.approx([e.logprob for e in whole.logprobs.content], abs=1e-4)


def test_n_choices_stream_side_by_side(sdk):
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=COUNT, max_tokens=12, n=2, seed=5, stream=True))
    finishes = {c.choices[0].index: c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason}
    assert set(finishes) == {0, 1}
    texts = {i: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices[0].index == i) for i in (0, 1)}
    assert all(texts.values())


def test_a_streamed_session_call_records_the_tokens_the_client_saw(live_url):
    sid = new_session_id("stream")
    sdk = openai.OpenAI(base_url=f"{live_url}/sessions/{sid}/v1", api_key="none", max_retries=0, timeout=300)
    kwargs = {"model": MODEL, "messages": ask("Oslo"), "tools": [WEATHER], "tool_choice": NAMED, "max_tokens": 20}
    kwargs["extra_body"] = {"return_token_ids": True}
    chunks = list(sdk.chat.completions.create(**kwargs, temperature=0, stream=True))
    args = "".join(d.function.arguments or "" for c in chunks for d in c.choices[0].delta.tool_calls or [])
    assert json.loads(args) == {"city": "Oslo"}
    last = next(c.choices[0] for c in chunks if c.choices[0].finish_reason)
    assert last.finish_reason == "tool_calls"
    t = httpx.get(f"{live_url}/sessions/{sid}/trajectory", timeout=60).json()
    seg = t["segments"][0]
    sampled = [tok for tok, m in zip(seg["token_ids"], seg["loss_mask"], strict=True) if m == 1]
    assert sampled == last.model_extra["token_ids"]
    assert seg["token_ids"] == [*last.model_extra["prompt_token_ids"], *last.model_extra["token_ids"]]
    assert t["messages"][-1]["tool_calls"][0]["name"] == "get_weather"


def test_a_stream_the_client_drops_is_not_recorded_and_the_server_goes_on(live_url):
    sid = new_session_id("dropped")
    base = f"{live_url}/sessions/{sid}/v1"
    body = {"model": MODEL, "messages": COUNT, "max_tokens": 200, "stream": True}
    with httpx.stream("POST", f"{base}/chat/completions", json=body, timeout=120) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if '"content"' in line and '"role"' not in line:
                break  # a token arrived: hang up mid-answer
    # The session's next call is not blocked by the dropped one, and nothing half-done was recorded.
    sdk = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=300)
    sdk.chat.completions.create(model=MODEL, messages=COUNT, max_tokens=4)
    t = httpx.get(f"{live_url}/sessions/{sid}/trajectory", timeout=60).json()
    assert len(t["turns"]) == 1


def test_response_format_json_schema_is_enforced(sdk):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "Rome", "Oslo"]}, "rain": {"type": "boolean"}},
        "required": ["city", "rain"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "weather", "schema": schema}}
    for stream in (False, True):
        kwargs = {"model": MODEL, "messages": ask("Rome"), "max_tokens": 40, "response_format": fmt, "seed": 1}
        if stream:
            chunks = sdk.chat.completions.create(**kwargs, stream=True)
            content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            content = sdk.chat.completions.create(**kwargs).choices[0].message.content
        jsonschema.validate(json.loads(content), schema)


def test_a_schema_the_engine_cannot_compile_is_a_400_the_client_does_not_retry(sdk):
    # A backreference: a valid regex for jsonschema, one vLLM's grammar backend (xgrammar) cannot compile.
    # The request, not the engine, is at fault.
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(a)\\1"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "twice", "schema": schema}}
    kwargs = {"model": MODEL, "messages": COUNT, "max_tokens": 8, "response_format": fmt}
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as e:
            r = sdk.chat.completions.create(**kwargs, stream=stream)
            list(r) if stream else None
        assert e.value.body["code"] == "invalid_request" and "refused" in e.value.body["message"]
    ok = sdk.chat.completions.create(model=MODEL, messages=COUNT, max_tokens=4)  # and the engine serves on
    assert ok.choices[0].message.content is not None
