"""Qwen3: ChatML + Hermes tool calls + `<think>` reasoning.

History policy (explicit, as the template dictates): reasoning of turns after
the last user query is kept, so a tool loop extends token-exactly; a new user
message makes the template drop earlier reasoning, and the bridge then starts
a new segment (recorded) rather than silently re-tokenizing.
"""

from __future__ import annotations

from agentroll.renderers.hf import TemplateConfig, TemplateRenderer
from agentroll.renderers.templates import load_template
from agentroll.renderers.tokenizers import load_tokenizer


def qwen3(enable_thinking: bool = True) -> TemplateRenderer:
    config = TemplateConfig(
        tool_format="hermes",
        stop_tokens=("<|im_end|>", "<|endoftext|>"),
        reasoning_tags=("<think>", "</think>"),
        content_required=True,
        template_kwargs={"enable_thinking": enable_thinking},
    )
    return TemplateRenderer("qwen3", load_tokenizer("qwen3"), load_template("qwen3"), config)
