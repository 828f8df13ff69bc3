"""Renderers by exact model/family name, loaded lazily: one file per family.

renderer = get_renderer("smollm2")
ids = renderer.render(messages, tools)          # first prompt
parsed = renderer.parse(sampled_ids, tools)     # never re-encoded
bridge = renderer.bridge(history, new_messages, tools)
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from agentroll.errors import UnknownNameError

# exact name -> "module:factory"
RENDERERS: dict[str, str] = {
    "smollm2": "agentroll.renderers.chatml:smollm2",
    "qwen2.5": "agentroll.renderers.chatml:qwen25",
    "qwen3": "agentroll.renderers.qwen3:qwen3",
    "llama3.1": "agentroll.renderers.llama3:llama31",
    "llama3.2": "agentroll.renderers.llama3:llama32",
    "deepseek-r1": "agentroll.renderers.deepseek:deepseek_r1",
    "mistral-v3": "agentroll.renderers.mistral:mistral_v3",
    "mistral-v3-tekken": "agentroll.renderers.mistral:mistral_v3_tekken",
    "mistral-v7": "agentroll.renderers.mistral:mistral_v7",
    "mistral-v11": "agentroll.renderers.mistral:mistral_v11",
    "mistral-v13": "agentroll.renderers.mistral:mistral_v13",
    "gpt-oss": "agentroll.renderers.harmony:gpt_oss",
}


def available() -> list[str]:
    return sorted(RENDERERS)


@functools.cache
def get_renderer(name: str) -> Any:
    """The renderer registered under exactly `name` (built once per process)."""
    if name not in RENDERERS:
        raise UnknownNameError("renderer", name, list(RENDERERS))
    module, _, factory = RENDERERS[name].partition(":")
    return getattr(importlib.import_module(module), factory)()
