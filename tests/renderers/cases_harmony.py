"""gpt-oss harmony renderer; the reference is openai-harmony (the Rust renderer OpenAI publishes).

openai-harmony reads `o200k_base.tiktoken` from TIKTOKEN_ENCODINGS_BASE; the renderer
module builds that file offline (checked against tiktoken's hash) and we point it there.
"""

from __future__ import annotations

import json
import os
from functools import cache

from agentroll.renderers.harmony import HarmonyRenderer, o200k_tiktoken_dir
from agentroll.types import Message, ToolSpec
from tests.renderers.conformance import ConversationStyle, RendererCase


@cache
def harmony_encoding():
    os.environ.setdefault("TIKTOKEN_ENCODINGS_BASE", str(o200k_tiktoken_dir()))
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)


def _messages(messages: list[Message]) -> list:
    """Our messages as openai-harmony messages (the mapping the renderer documents), written independently."""
    from openai_harmony import Author, Role
    from openai_harmony import Message as HMessage

    out, names = [], {}
    for m in messages:
        if m.role == "user":
            out.append(HMessage.from_role_and_content(Role.USER, m.content))
        elif m.role == "tool":
            author = Author.new(Role.TOOL, f"functions.{m.name or names[m.tool_call_id]}")
            out.append(
                HMessage.from_author_and_content(author, m.content)
                .with_channel("commentary")
                .with_recipient("assistant")
            )
        elif m.role == "assistant":
            if m.reasoning:
                out.append(HMessage.from_role_and_content(Role.ASSISTANT, m.reasoning).with_channel("analysis"))
            if m.tool_calls and m.content:
                out.append(HMessage.from_role_and_content(Role.ASSISTANT, m.content).with_channel("commentary"))
            for c in m.tool_calls:
                names[c.id] = c.name
                call = HMessage.from_role_and_content(Role.ASSISTANT, json.dumps(c.arguments, ensure_ascii=False))
                out.append(call.with_channel("commentary").with_recipient(f"functions.{c.name}")
                           .with_content_type("<|constrain|>json"))  # fmt: skip
            if not m.tool_calls and (m.content or not m.reasoning):
                out.append(HMessage.from_role_and_content(Role.ASSISTANT, m.content or "").with_channel("final"))
    return out


def _header(messages: list[Message], tools: list[ToolSpec]) -> list:
    from openai_harmony import DeveloperContent, Role, SystemContent, ToolDescription
    from openai_harmony import Message as HMessage

    header = [HMessage.from_role_and_content(Role.SYSTEM, SystemContent.new())]
    instructions = "\n\n".join(m.content for m in messages if m.role == "system")
    if instructions or tools:
        dev = DeveloperContent.new()
        if instructions:
            dev = dev.with_instructions(instructions)
        if tools:
            dev = dev.with_function_tools([ToolDescription.new(t.name, t.description, t.input_schema) for t in tools])
        header.append(HMessage.from_role_and_content(Role.DEVELOPER, dev))
    return header


def harmony_reference(messages: list[Message], tools: list[ToolSpec], add_generation_prompt: bool) -> list[int]:
    """render_conversation_for_completion; a conversation ending in an assistant turn gives that turn as
    sampled: the completion prompt before it, then the turn as render_conversation_for_training renders it."""
    from openai_harmony import Conversation, RenderConversationConfig, Role

    enc = harmony_encoding()
    header = _header(messages, tools)
    if add_generation_prompt or messages[-1].role != "assistant":
        convo = Conversation.from_messages(header + _messages(messages))
        if add_generation_prompt:
            return enc.render_conversation_for_completion(convo, Role.ASSISTANT)
        return enc.render_conversation(convo)
    prior = Conversation.from_messages(header + _messages(messages[:-1]))
    prompt = enc.render_conversation_for_completion(prior, Role.ASSISTANT)
    opener = len(prompt) - len(enc.render_conversation(prior))
    turn = Conversation.from_messages(_messages(messages[-1:]))
    sampled = enc.render_conversation_for_training(turn, RenderConversationConfig(auto_drop_analysis=False))
    return prompt + sampled[opener:]


CASES = [
    RendererCase(
        "gpt-oss",
        HarmonyRenderer,
        harmony_reference,
        # gpt-oss stops at its first <|call|>: one call per sampled turn.
        style=ConversationStyle(reasoning=True, parallel_calls=False),
        prefix_stable=False,  # final answers end in <|return|> but re-render as <|end|>; analysis is dropped
    ),
]
