"""`kimi_k2`: Kimi K2 tool calls; the call id is the model's own `functions.NAME:IDX`.

    <|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>
    {"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>

Section markers and whitespace between calls are not content; other text is. An id that does not end in
`:IDX` (`functions.get_weather.0`, a bare counter `0`) names no function: MISSING_NAME in both modes, as vLLM
skips such a call.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentroll.types import ParseStatus, ToolSpec

from .base import RawCall, Region, RegionParser, Source
from .sections import scan_sections

SECTION_BEGIN, SECTION_END = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
CALL_BEGIN, ARGS_BEGIN, CALL_END = "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>"


class KimiK2Parser(RegionParser):
    name = "kimi_k2"
    markers = (SECTION_BEGIN, SECTION_END, CALL_BEGIN, ARGS_BEGIN, CALL_END)

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        return scan_sections(src, SECTION_BEGIN, SECTION_END, CALL_BEGIN, _call)


def _call(src: Source, start: int, body: int) -> RawCall:
    text = src.text
    close = src.find(CALL_END, body)
    closed = close >= 0
    body_end = close if closed else len(text)
    call = RawCall(start, close + len(CALL_END) if closed else len(text), closed)
    args = src.find(ARGS_BEGIN, body, body_end)
    if args < 0:
        if closed:
            call.name = _name(text[body:body_end].strip())
            call.status, call.error = ParseStatus.INVALID_ARGUMENTS, f"no {ARGS_BEGIN} after the call id"
        return call
    call_id = text[body:args].strip()
    call.call_id = call_id or None
    call.name = _name(call_id)
    call.args_text = text[args + len(ARGS_BEGIN) : body_end]
    if call_id and call.name is None:
        call.status, call.error = ParseStatus.MISSING_NAME, f"the call id {call_id!r} is not functions.NAME:IDX"
    return call


def _name(call_id: str) -> str | None:
    """`functions.get_weather:0` -> `get_weather` (the prefix is optional, the index is not)."""
    head, colon, index = call_id.removeprefix("functions.").rpartition(":")
    return head if colon and index.isdigit() and head else None
