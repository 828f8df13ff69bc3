"""ChatML with Hermes-style tool calls: SmolLM2 (agentroll's chatml-tools template) and Qwen2.5.

Both are prefix-stable: a sampled turn ends with `<|im_end|>`, the template adds
'\\n', tool results go into one `<|im_start|>user` turn of <tool_response> blocks.
"""

from __future__ import annotations

from agentroll.renderers.hf import TemplateConfig, TemplateRenderer
from agentroll.renderers.templates import load_template
from agentroll.renderers.tokenizers import load_tokenizer

# Both templates write user and tool contents verbatim: bridges are filled in per shape (fragments.py).
CHATML_HERMES = TemplateConfig(tool_format="hermes", stop_tokens=("<|im_end|>",), fragment_bridge=True)


def smollm2() -> TemplateRenderer:
    """SmolLM2-Instruct (the embedded default model): its GGUF tokenizer + agentroll's chatml-tools template."""
    return TemplateRenderer("smollm2", load_tokenizer("smollm2"), load_template("chatml-tools"), CHATML_HERMES)


def qwen25() -> TemplateRenderer:
    """Qwen2.5-Instruct: the Qwen BPE rebuilt from quicktok + the Hub template."""
    config = TemplateConfig(tool_format="hermes", stop_tokens=("<|im_end|>", "<|endoftext|>"), fragment_bridge=True)
    return TemplateRenderer("qwen2.5", load_tokenizer("qwen2.5"), load_template("qwen2.5"), config)
