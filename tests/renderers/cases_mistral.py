"""Mistral renderers; the reference is mistral-common's own `encode_chat_completion`."""

from __future__ import annotations

import json
import random
import string
from functools import cache

from agentroll.renderers.mistral import MistralRenderer, tekken_file
from agentroll.types import Message, ToolSpec
from tests.renderers.conformance import ConversationStyle, RendererCase


def mistral_call_id(rng: random.Random) -> str:
    """mistral-common accepts only 9 alphanumerics as a tool call id."""
    return "".join(rng.choices(string.ascii_letters + string.digits, k=9))


@cache
def _tokenizer(version: str):
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    # v11 / v13: the same file the renderer reads (no v11+ file ships on PyPI: renderers/mistral.py); the
    # reference is mistral-common's own v11 / v13 instruct encoder over it.
    return MistralTokenizer.from_file(str(tekken_file(version)))


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
    RendererCase(
        "mistral-v11",
        lambda: MistralRenderer("v11"),
        mistral_reference("v11"),
        style=ConversationStyle(make_call_id=mistral_call_id),
        prefix_stable=False,  # as v7
    ),
    RendererCase(
        "mistral-v13",
        lambda: MistralRenderer("v13"),
        mistral_reference("v13"),
        style=ConversationStyle(make_call_id=mistral_call_id),
        prefix_stable=True,  # [AVAILABLE_TOOLS] stays before the first user message
    ),
]
