"""`hermes`: Hermes / Qwen2.5 / Qwen3 `<tool_call>{"name": .., "arguments": {..}}</tool_call>`.

Several calls may follow each other; text before, between and after them is
content. In Qwen vocabularies both tags are single tokens, so from token IDs a
tag spelled with ordinary tokens (e.g. inside an argument string) is text.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentroll.types import ToolSpec

from .base import Region, RegionParser, Source, TextRegion, json_envelope_call

OPEN, CLOSE = "<tool_call>", "</tool_call>"


class HermesParser(RegionParser):
    name = "hermes"
    markers = (OPEN, CLOSE)

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        text, pos, out = src.text, 0, []
        while (start := src.find(OPEN, pos)) >= 0:
            out.append(TextRegion(pos, start))
            body = start + len(OPEN)
            close = src.find(CLOSE, body)
            if close < 0:  # the turn ended inside the call
                out.append(json_envelope_call(text, start, body, len(text), len(text), closed=False))
                return out
            pos = close + len(CLOSE)
            out.append(json_envelope_call(text, start, body, close, pos, closed=True))
        out.append(TextRegion(pos, len(text)))
        return out
