"""`glm45`: GLM-4.5 .. GLM-5 tool calls with key/value tags.

    <tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</arg_value></tool_call>

(GLM-4.5 puts newlines between the parts.) A value is JSON when it parses,
else a string; when the tool's schema types the parameter as a string, the
text is kept as is. Argument text for streaming is canonical JSON, pair by pair.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentroll.types import ParseStatus, ToolSpec

from .base import RawCall, Region, RegionParser, Source, scan_tagged
from .xmlargs import args_json, decode_value, pair_text, param_types

OPEN, CLOSE = "<tool_call>", "</tool_call>"
KEY, KEY_END, VALUE, VALUE_END = "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>"


class Glm45Parser(RegionParser):
    name = "glm45"
    markers = (OPEN, CLOSE, KEY, KEY_END, VALUE, VALUE_END)

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        return scan_tagged(src, OPEN, lambda start, body: _call(src, start, body, tools))


def _call(src: Source, start: int, body: int, tools: Sequence[ToolSpec]) -> RawCall:
    text = src.text
    close = src.find(CLOSE, body)
    closed = close >= 0
    body_end = close if closed else len(text)
    call = RawCall(start, close + len(CLOSE) if closed else len(text), closed)
    first_key = src.find(KEY, body, body_end)
    name_end = first_key if first_key >= 0 else body_end
    if first_key < 0 and not closed:
        return call  # the name is complete only at the first key or the call's end
    call.name = text[body:name_end].strip() or None
    types = param_types(call.name, tools)
    arguments: dict = {}
    pairs: list[str] = []
    pos = name_end
    while (k := src.find(KEY, pos, body_end)) >= 0:
        k_end = src.find(KEY_END, k, body_end)
        v = src.find(VALUE, k_end, body_end) if k_end >= 0 else -1
        v_end = src.find(VALUE_END, v, body_end) if v >= 0 else -1
        if v_end < 0:
            if closed:
                call.status, call.error = ParseStatus.INVALID_ARGUMENTS, "an <arg_key> without its <arg_value>"
            break
        key = text[k + len(KEY) : k_end].strip()
        value = decode_value(text[v + len(VALUE) : v_end], types.get(key))
        arguments[key] = value
        pairs.append(pair_text(key, value))
        pos = v_end + len(VALUE_END)
    call.arguments = arguments
    call.args_text = args_json(pairs, closed=closed)
    return call
