"""TokenSource maps character offsets to token indices two ways: per-token offsets from one batch decode
(fast path) and a search over decoded prefixes (any tokenizer). They must agree everywhere."""

from __future__ import annotations

from typing import Any

import pytest

from agentroll.renderers import get_renderer
from agentroll.renderers.toolcalls.source import TokenSource

TEXTS = [
    'Let me compute. <tool_call>\n{"name": "calculator", "arguments": {"expression": "3 * 12"}}\n</tool_call>',
    "Prix: 12,50 € — naïve café, 東京 and emoji 🙂🙂 in one run",
    "   leading spaces, tabs\tand\nnewlines\n\n  ",
]


class _NoBatch:
    """The same tokenizer without `decode_each`: TokenSource must fall back to its prefix search."""

    def __init__(self, tok: Any):
        self._tok = tok

    def decode(self, ids: Any) -> str:
        return self._tok.decode(ids)


@pytest.mark.parametrize("family", ["smollm2", "qwen2.5", "llama3.1"])
def test_fast_offsets_and_prefix_search_give_the_same_token_index(family: str) -> None:
    tok = get_renderer(family).tokenizer
    for text in TEXTS:
        ids = tok.encode(text)
        fast, slow = TokenSource(ids, tok, {}), TokenSource(ids, _NoBatch(tok), {})
        assert fast.text == slow.text
        for char in range(len(fast.text) + 1):
            for round_up in (False, True):
                assert fast._token_index(char, round_up=round_up) == slow._token_index(char, round_up=round_up)
