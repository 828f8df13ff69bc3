"""Llama 3.1 / 3.2: JSON tool calls (`{"name": .., "parameters": ..}`), tools in the first user turn.

A sampled turn ends with `<|eot_id|>` (or `<|eom_id|>` after a `<|python_tag|>` call);
the template adds nothing after it, and tool results are `ipython` turns.
"""

from __future__ import annotations

from agentroll.renderers.hf import TemplateConfig, TemplateRenderer
from agentroll.renderers.templates import load_template
from agentroll.renderers.tokenizers import load_tokenizer

LLAMA3_JSON = TemplateConfig(tool_format="llama3_json", stop_tokens=("<|eot_id|>", "<|eom_id|>"))


def llama31() -> TemplateRenderer:
    return TemplateRenderer("llama3.1", load_tokenizer("llama3"), load_template("llama3.1"), LLAMA3_JSON)


def llama32() -> TemplateRenderer:
    return TemplateRenderer("llama3.2", load_tokenizer("llama3"), load_template("llama3.2"), LLAMA3_JSON)
