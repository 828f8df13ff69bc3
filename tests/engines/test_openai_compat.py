"""The OpenAI-compatible engine against a real vLLM server's OpenAI API.

Token-exact when the server returns IDs; when told not to ask for them the same server answers
with text only, and the engine must say `token_exact=False` on every Completion.
"""

from __future__ import annotations

from typing import Any

import pytest

from agentroll.engines.openai_compat import OpenAIEngine
from agentroll.engines.vllm_server import VLLMServerEngine
from agentroll.errors import EngineError
from agentroll.types import Message, SamplingParams

pytestmark = pytest.mark.slow

GREEDY = SamplingParams(temperature=0.0, max_tokens=12)


def chat_prompt(tokenizer: Any, text: str) -> list[int]:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, return_dict=False
    )


def test_token_prompt_through_completions_is_token_exact(vllm_server: Any, loop: Any, tokenizer: Any) -> None:
    ids = chat_prompt(tokenizer, "Say hello.")
    engine, native = OpenAIEngine(vllm_server.url), VLLMServerEngine(vllm_server.url)
    try:
        c = loop.run(engine.generate(ids, GREEDY.model_copy(update={"logprobs": 3})))
        reference = loop.run(native.generate(ids, GREEDY))
        assert c.token_exact and c.token_ids == reference.token_ids
        assert len(c.logprobs) == len(c.token_ids) and all(len(row) == 3 for row in c.top_logprobs)
        assert tokenizer.decode(c.token_ids, skip_special_tokens=True) == c.meta["text"]
    finally:
        loop.run(engine.aclose())
        loop.run(native.aclose())


def test_text_only_answers_are_marked_not_token_exact(vllm_server: Any, loop: Any, tokenizer: Any) -> None:
    ids = chat_prompt(tokenizer, "Say hello.")
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    engine = OpenAIEngine(vllm_server.url, token_ids=False, tokenize=encode)
    bare = OpenAIEngine(vllm_server.url, token_ids=False)
    try:
        c = loop.run(engine.generate(ids, GREEDY))
        assert c.token_exact is False
        assert c.token_ids == encode(c.meta["text"])
        with pytest.raises(EngineError, match="tokenize"):
            loop.run(bare.generate(ids, GREEDY))
    finally:
        loop.run(engine.aclose())
        loop.run(bare.aclose())


def test_chat_mode_returns_the_message_and_says_whether_it_is_token_exact(
    vllm_server: Any, loop: Any, tokenizer: Any
) -> None:
    messages = [Message(role="user", content="What is two plus two?")]
    exact = OpenAIEngine(vllm_server.url)
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    text_only = OpenAIEngine(vllm_server.url, token_ids=False, tokenize=encode)
    try:
        a = loop.run(exact.chat(messages, sampling=GREEDY))
        assert a.completion.token_exact and a.message.role == "assistant"
        assert tokenizer.decode(a.completion.token_ids, skip_special_tokens=True) == a.message.content
        # The server rendered with the same template we would: the IDs match the token-in path.
        native = loop.run(exact.generate(chat_prompt(tokenizer, "What is two plus two?"), GREEDY))
        assert a.completion.token_ids == native.token_ids
        b = loop.run(text_only.chat(messages, sampling=GREEDY))
        assert b.completion.token_exact is False and b.message.content == a.message.content
    finally:
        loop.run(exact.aclose())
        loop.run(text_only.aclose())


def test_vllm_engine_falls_back_to_completions_with_the_same_tokens(
    vllm_server: Any, loop: Any, tokenizer: Any
) -> None:
    """A vLLM without /inference/v1/generate is driven through /v1/completions, still token-exact."""
    from agentroll.engines.verify import check_logprobs

    ids = chat_prompt(tokenizer, "Name a colour.")
    fallback, native = VLLMServerEngine(vllm_server.url, api="completions"), VLLMServerEngine(vllm_server.url)
    sp = SamplingParams(temperature=1.0, max_tokens=10, seed=21, logprobs=2)
    try:
        a, b = loop.run(fallback.generate(ids, sp)), loop.run(native.generate(ids, sp))
        assert a.meta["endpoint"] == "/v1/completions" and b.meta["endpoint"] == "/inference/v1/generate"
        assert a.token_exact and a.token_ids == b.token_ids
        for row_a, row_b in zip(a.top_logprobs, b.top_logprobs, strict=True):
            assert [t for t, _ in row_a] == [t for t, _ in row_b]  # the same k best, whichever endpoint
            assert all(abs(x - y) < 1e-4 for (_, x), (_, y) in zip(row_a, row_b, strict=True))
        assert tokenizer.decode(a.token_ids, skip_special_tokens=True) == a.meta["text"]
        assert loop.run(check_logprobs(fallback, ids, a)).ok
    finally:
        loop.run(fallback.aclose())
        loop.run(native.aclose())
