"""Tool-call parsers by vLLM `--tool-call-parser` name: one file per format, loaded lazily.

parser = get_parser("hermes")
parsed = parser.parse(text, tools)            # or parser.parse_ids(ids, tokenizer, tools)
stream = parser.stream(tools); stream.feed(chunk) ...; stream.flush(); stream.finish()
"""

from __future__ import annotations

import importlib

from agentroll.errors import UnknownNameError

from .base import Delta, ToolCallParser

__all__ = ["PARSERS", "Delta", "ToolCallParser", "available", "get_parser"]

# exact name -> "module:Class"
PARSERS: dict[str, str] = {
    "hermes": "agentroll.renderers.toolcalls.hermes:HermesParser",
    "llama3_json": "agentroll.renderers.toolcalls.llama3_json:Llama3JsonParser",
    "pythonic": "agentroll.renderers.toolcalls.pythonic:PythonicParser",
    "mistral": "agentroll.renderers.toolcalls.mistral:MistralParser",
    "deepseek_v3": "agentroll.renderers.toolcalls.deepseek_v3:DeepSeekV3Parser",
    "kimi_k2": "agentroll.renderers.toolcalls.kimi_k2:KimiK2Parser",
    "glm45": "agentroll.renderers.toolcalls.glm45:Glm45Parser",
    "qwen3_coder": "agentroll.renderers.toolcalls.qwen3_coder:Qwen3CoderParser",
    "openai": "agentroll.renderers.toolcalls.openai:OpenAIParser",
}

_CACHE: dict[str, ToolCallParser] = {}


def available() -> list[str]:
    return sorted(PARSERS)


def get_parser(name: str) -> ToolCallParser:
    """The parser registered under exactly `name` (parsers are stateless and shared)."""
    if name not in PARSERS:
        raise UnknownNameError("tool-call parser format", name, list(PARSERS))
    if name not in _CACHE:
        module, _, cls = PARSERS[name].partition(":")
        _CACHE[name] = getattr(importlib.import_module(module), cls)()
    return _CACHE[name]
