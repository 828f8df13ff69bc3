"""Mistral renderers; the reference is mistral-common's own `encode_chat_completion`."""

from __future__ import annotations

import json
import random
import string
from functools import cache

from agentroll.renderers.mistral import MistralRenderer
from agentroll.types import Message, ToolSpec
from tests.renderers.conformance import ConversationStyle, RendererCase

_FILES = {
    "v3": "mistral_instruct_tokenizer_240323.model.v3",
    "v3-tekken": "tekken_240718.json",
    "v7": "mistral_instruct_tokenizer_241114.model.v7",
}


def mistral_call_id(rng: random.Random) -> str:
    """mistral-common accepts only 9 alphanumerics as a tool call id."""
    return "".join(rng.choices(string.ascii_letters + string.digits, k=9))


@cache
def _tokenizer(version: str):
    from importlib import resources

    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    return MistralTokenizer.from_file(str(resources.files("mistral_common") / "data" / _FILES[version]))


def _request_message(m: Message):
    from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, ToolMessage, UserMessage
    from mistral_common.protocol.instruct.tool_calls import FunctionCall, ToolCall

    if m.role == "system":
        return SystemMessage(content=m.content)
    if m.role == "user":
        return UserMessage(content=m.content)
    if m.role == "tool":
        return ToolMessage(content=m.content, tool_call_id=m.tool_call_id, name=m.name)
    calls = [
        ToolCall(id=c.id, function=FunctionCall(name=c.name, arguments=json.dumps(c.arguments, ensure_ascii=False)))
        for c in m.tool_calls
    ]
    return AssistantMessage(content=m.content, tool_calls=calls or None)


def mistral_reference(version: str):
    def reference(messages: list[Message], tools: list[ToolSpec], add_generation_prompt: bool) -> list[int]:
        from mistral_common.protocol.instruct.request import ChatCompletionRequest
        from mistral_common.protocol.instruct.tool_calls import Function, Tool

        request = ChatCompletionRequest(
            messages=[_request_message(m) for m in messages],
            tools=[Tool(function=Function(name=t.name, description=t.description, parameters=t.input_schema))
                   for t in tools] or None,
        )  # fmt: skip
        tokenizer = _tokenizer(version)
        if messages[-1].role == "assistant":
            # encode_chat_completion's validator refuses to end on an assistant turn; its own
            # normalizer and instruct encoder (what it calls next) give the finished turn's tokens.
            normalized = tokenizer._instruct_request_normalizer.from_chat_completion_request(request)
            return tokenizer.instruct_tokenizer.encode_instruct(normalized).tokens
        return tokenizer.encode_chat_completion(request).tokens

    return reference


CASES = [
    RendererCase(
        "mistral-v3",
        lambda: MistralRenderer("v3"),
        mistral_reference("v3"),
        style=ConversationStyle(content_with_calls=False, make_call_id=mistral_call_id),
        prefix_stable=False,  # [AVAILABLE_TOOLS] and the system prompt move to each new last user message
    ),
    RendererCase(
        "mistral-v3-tekken",
        lambda: MistralRenderer("v3-tekken"),
        mistral_reference("v3-tekken"),
        style=ConversationStyle(content_with_calls=False, make_call_id=mistral_call_id),
        prefix_stable=False,
    ),
    RendererCase(
        "mistral-v7",
        lambda: MistralRenderer("v7"),
        mistral_reference("v7"),
        style=ConversationStyle(make_call_id=mistral_call_id),
        prefix_stable=False,  # [AVAILABLE_TOOLS] moves to each new last user message
    ),
]
