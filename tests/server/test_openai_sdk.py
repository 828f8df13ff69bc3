"""The official `openai` SDK against a real `agentroll serve`: sync, async, streaming, tools, logprobs."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from agentroll.renderers import get_renderer
from agentroll.types import Message, ToolSpec

from .helpers import MODEL, NAMED, WEATHER, ask

pytestmark = pytest.mark.slow
HELLO = [{"role": "user", "content": "Say hello to Ada."}]


@pytest.fixture(scope="module")
def sdk(live_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key="none", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def renderer():
    return get_renderer("smollm2")


def test_chat_returns_the_engine_tokens_with_aligned_logprobs(sdk, renderer):
    r = sdk.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=8, temperature=0, logprobs=True, top_logprobs=2,
        extra_body={"return_token_ids": True},
    )  # fmt: skip
    choice = r.choices[0]
    ids, prompt = choice.model_extra["token_ids"], choice.model_extra["prompt_token_ids"]
    assert prompt == renderer.render([Message.from_openai(m) for m in HELLO])
    assert len(ids) == r.usage.completion_tokens == len(choice.logprobs.content) > 0
    assert r.usage.prompt_tokens == len(prompt)
    assert "".join(e.token for e in choice.logprobs.content) == renderer.tokenizer.decode(ids)
    for e in choice.logprobs.content:
        assert e.logprob <= 0 and len(e.top_logprobs) == 2
        assert e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob
        assert e.top_logprobs[0].token == e.token  # greedy: the sampled token is the top one
    body = ids[:-1] if ids[-1] in renderer.stop_token_ids() else ids
    assert choice.message.content == renderer.tokenizer.decode(body).strip()


def test_streamed_chunks_join_to_the_non_streamed_answer(sdk):
    kwargs = {"model": MODEL, "messages": HELLO, "max_tokens": 8, "temperature": 0}
    whole = sdk.chat.completions.create(**kwargs)
    chunks = list(sdk.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_named_tool_choice_gives_a_tool_call_streamed_as_openai_deltas(sdk):
    kwargs = {"model": MODEL, "messages": ask("Paris"), "tools": [WEATHER], "tool_choice": NAMED, "max_tokens": 20}
    whole = sdk.chat.completions.create(**kwargs, temperature=0)
    call = whole.choices[0].message.tool_calls[0]
    assert whole.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    name, args, ids = "", "", set()
    for chunk in sdk.chat.completions.create(**kwargs, temperature=0, stream=True):
        for d in chunk.choices[0].delta.tool_calls or []:
            assert d.index == 0
            ids.add(d.id) if d.id else None
            name += d.function.name or ""
            args += d.function.arguments or ""
    assert (name, args) == ("get_weather", call.function.arguments)
    assert len(ids) == 1 and ids.pop().startswith("call_")  # one id, on the call's first delta


SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
            "required": ["query", "limit"],
        },
    },
}


def test_tool_choice_required_gets_a_valid_call_every_time(sdk):
    """Guided decoding holds the turn to a call of an offered tool with schema-valid arguments: no worked
    example, sampling at temperature 1, 16 choices; unguided, the 135M model writes malformed calls here."""
    import jsonschema

    tools = [WEATHER, SEARCH]
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    messages = [{"role": "user", "content": "Will it rain in Lyon tomorrow?"}]
    for stream in (False, True):
        for _ in range(2):
            got = sdk.chat.completions.create(
                model=MODEL, messages=messages, tools=tools, tool_choice="required", n=4, max_tokens=256,
                temperature=1.0, stream=stream,
            )  # fmt: skip
            calls = _stream_calls(got) if stream else [c.message.tool_calls for c in got.choices]
            for choice_calls in calls:
                assert choice_calls, "no tool call"
                for c in choice_calls:
                    jsonschema.validate(json.loads(c["arguments"] if stream else c.function.arguments),
                                        schemas[c["name"] if stream else c.function.name])  # fmt: skip


def _stream_calls(chunks) -> list[list[dict]]:
    calls: dict[int, dict[int, dict]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for d in choice.delta.tool_calls or []:
                call = calls.setdefault(choice.index, {}).setdefault(d.index, {"name": "", "arguments": ""})
                call["name"] += d.function.name or ""
                call["arguments"] += d.function.arguments or ""
    return [list(calls.get(i, {}).values()) for i in range(4)]


def test_async_client_gets_n_choices_and_concurrent_answers(live_url):
    async def scenario() -> list:
        client = openai.AsyncOpenAI(base_url=f"{live_url}/v1", api_key="none", max_retries=0, timeout=300)
        ask_one = client.chat.completions.create
        calls = [ask_one(model=MODEL, messages=HELLO, max_tokens=6, seed=i) for i in range(2)]
        calls.append(ask_one(model=MODEL, messages=HELLO, max_tokens=6, n=2, seed=7))
        try:
            return await asyncio.gather(*calls)
        finally:
            await client.close()

    one, two, pair = asyncio.run(scenario())
    assert len(one.choices) == len(two.choices) == 1 and len(pair.choices) == 2
    assert [c.index for c in pair.choices] == [0, 1]
    assert pair.usage.prompt_tokens == one.usage.prompt_tokens  # n choices share one prompt
    assert all(c.message.content for c in (*one.choices, *two.choices, *pair.choices))


def test_letta_style_overrides_return_logprobs_and_token_ids(sdk):
    r = sdk.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=4, extra_body={"return_logprobs": True, "return_token_ids": True}
    )
    choice = r.choices[0]
    assert len(choice.logprobs.content) == len(choice.model_extra["token_ids"]) == r.usage.completion_tokens


def test_text_completion_takes_token_ids_and_returns_legacy_logprobs(sdk, renderer):
    prompt = renderer.render([Message.from_openai(m) for m in HELLO])
    r = sdk.completions.create(
        model=MODEL, prompt=prompt, max_tokens=5, logprobs=2, temperature=0, extra_body={"return_token_ids": True}
    )
    choice = r.choices[0]
    assert choice.model_extra["prompt_token_ids"] == prompt
    assert len(choice.logprobs.tokens) == len(choice.logprobs.token_logprobs) == len(choice.model_extra["token_ids"])
    assert all(len(row) <= 2 for row in choice.logprobs.top_logprobs)


def test_text_completion_streams_and_echoes_the_prompt(sdk):
    kwargs = {"model": MODEL, "prompt": "The capital of France is", "max_tokens": 12, "temperature": 0}
    whole = sdk.completions.create(**kwargs, logprobs=1).choices[0]
    chunks = list(sdk.completions.create(**kwargs, logprobs=1, stream=True, stream_options={"include_usage": True}))
    streamed = [c.choices[0] for c in chunks if c.choices]
    assert "".join(c.text for c in streamed) == whole.text
    assert [t for c in streamed if c.logprobs for t in c.logprobs.tokens] == whole.logprobs.tokens
    assert chunks[-1].usage.completion_tokens == len(whole.logprobs.tokens)
    echoed = sdk.completions.create(**kwargs, echo=True).choices[0]
    assert echoed.text == "The capital of France is" + whole.text


def test_context_overflow_is_400_naming_the_field(sdk):
    with pytest.raises(openai.BadRequestError) as e:
        sdk.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=100_000)
    assert e.value.body["code"] == "context_length_exceeded" and e.value.body["param"] == "max_tokens"


def test_tool_schema_reaches_the_prompt_verbatim(sdk, renderer):
    """The prompt is the renderer's own render of messages + full JSON Schema tools (no re-shaping)."""
    messages = ask("Oslo")
    r = sdk.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER], max_tokens=1, extra_body={"return_token_ids": True}
    )
    tools = [ToolSpec.from_openai(WEATHER)]
    assert r.choices[0].model_extra["prompt_token_ids"] == renderer.render(
        [Message.from_openai(m) for m in messages], tools
    )


def test_stop_strings_end_the_text_the_client_reads_and_the_tokens_keep_them(sdk, renderer):
    count = [{"role": "user", "content": "Count from 1 to 20, one number per line."}]
    kw = {"model": MODEL, "max_tokens": 64, "temperature": 0, "stop": ["5"], "extra_body": {"return_token_ids": True}}
    choice = sdk.chat.completions.create(messages=count, **kw).choices[0]
    sampled = renderer.tokenizer.decode(choice.model_extra["token_ids"])
    assert "5" in sampled and "5" not in choice.message.content  # the engine stopped on it; the text ends before
    assert choice.finish_reason == "stop" and choice.message.content.strip() in sampled
    chunks = list(sdk.chat.completions.create(messages=count, stream=True, **kw))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == choice.message.content
    text = sdk.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=16, temperature=0, stop=[" 7"])
    assert " 7" not in text.choices[0].text and text.choices[0].finish_reason == "stop"
