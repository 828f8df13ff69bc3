"""`hermes`: Hermes / Qwen2.5 / Qwen3 `<tool_call>{"name": .., "arguments": {..}}</tool_call>`.

Several calls may follow each other; text before, between and after them is
content. A call the turn ended in before `</tool_call>` is TRUNCATED; a lenient parse uses it when its
JSON was whole (vLLM does). In Qwen vocabularies both tags are single tokens, so from token IDs a
tag spelled with ordinary tokens (e.g. inside an argument string) is text.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentroll.types import ToolSpec

from .base import RawCall, Region, RegionParser, Source, is_json_object, json_envelope_call, scan_tagged

OPEN, CLOSE = "<tool_call>", "</tool_call>"


class HermesParser(RegionParser):
    name = "hermes"
    markers = (OPEN, CLOSE)

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        def read_call(start: int, body: int) -> RawCall:
            close = src.find(CLOSE, body)
            if close < 0:  # the turn ended inside the call (its body may still be whole: a lenient parse uses it)
                call = json_envelope_call(src.text, start, body, len(src.text), len(src.text), closed=False)
                call.complete = is_json_object(src.text[body:])
                return call
            return json_envelope_call(src.text, start, body, close, close + len(CLOSE), closed=True)

        return scan_tagged(src, OPEN, read_call)
