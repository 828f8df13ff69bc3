"""Renderers over Hugging Face chat templates; the reference is `tokenizer.apply_chat_template`."""

from __future__ import annotations

import json

from agentroll.renderers import get_renderer
from agentroll.types import Message, ToolSpec
from tests.renderers.conformance import ConversationStyle, RendererCase


def _openai_message(m: Message, arguments_as_json: bool, content_required: bool) -> dict:
    """The message as an OpenAI-style dict, written independently of Message.to_hf."""
    d: dict = {"role": m.role, "content": "" if m.content is None and content_required else m.content}
    if m.reasoning is not None:
        d["reasoning_content"] = m.reasoning
    if m.tool_calls:
        d["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": json.dumps(c.arguments, ensure_ascii=False) if arguments_as_json else c.arguments,
                },
            }
            for c in m.tool_calls
        ]
    if m.role == "tool":
        d["tool_call_id"] = m.tool_call_id
        d["name"] = m.name
    return d


def hf_reference(name: str, *, arguments_as_json: bool = False, content_required: bool = False, **template_kwargs):
    def reference(messages: list[Message], tools: list[ToolSpec], add_generation_prompt: bool) -> list[int]:
        r = get_renderer(name)
        out = r.tokenizer.hf.apply_chat_template(
            [_openai_message(m, arguments_as_json, content_required) for m in messages],
            tools=[
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
                }
                for t in tools
            ]
            or None,
            chat_template=r.chat_template,
            add_generation_prompt=add_generation_prompt,
            tokenize=True,
            return_dict=False,
            **template_kwargs,
        )
        return list(out)

    return reference


CASES = [
    RendererCase("smollm2", lambda: get_renderer("smollm2"), hf_reference("smollm2")),
    RendererCase("qwen2.5", lambda: get_renderer("qwen2.5"), hf_reference("qwen2.5")),
    RendererCase(
        "qwen3",
        lambda: get_renderer("qwen3"),
        hf_reference("qwen3", content_required=True, enable_thinking=True),
        style=ConversationStyle(reasoning=True),
        prefix_stable=False,  # drops reasoning before the last user query; empty-think blocks only on the last turn
    ),
    RendererCase(
        "llama3.1",
        lambda: get_renderer("llama3.1"),
        hf_reference("llama3.1"),
        style=ConversationStyle(parallel_calls=False, content_with_calls=False),
    ),
    RendererCase(
        "deepseek-r1",
        lambda: get_renderer("deepseek-r1"),
        hf_reference("deepseek-r1", arguments_as_json=True, content_required=True),
        style=ConversationStyle(reasoning=False),
        # Its Hub template is not prefix-stable for a second round of tool calls: the generation prompt after
        # tool outputs is <｜tool▁outputs▁end｜>, which the template omits once a tool-calling turn follows.
        prefix_stable=False,
    ),
]
