"""`qwen3_coder`: Qwen3-Coder / Qwen3.5 XML-style tool calls.

    <tool_call>
    <function=get_weather>
    <parameter=city>
    Paris
    </parameter>
    </function>
    </tool_call>

A parameter's value is the text between its tags less the one newline the
template puts on each side; it is converted by the tool's schema type when
tools are given (JSON when it parses otherwise). A missing `</parameter>` ends
at the next parameter or `</function>`, as models do write that. A body that
is a JSON `{"name": .., "arguments": ..}` object (hermes style) is accepted too.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentroll.types import ParseStatus, ToolSpec

from .base import RawCall, Region, RegionParser, Source, json_envelope_call, scan_tagged
from .xmlargs import args_json, decode_value, pair_text, param_types

OPEN, CLOSE = "<tool_call>", "</tool_call>"
FUNC, FUNC_END, PARAM, PARAM_END = "<function=", "</function>", "<parameter=", "</parameter>"


class Qwen3CoderParser(RegionParser):
    name = "qwen3_coder"
    markers = (OPEN, CLOSE, FUNC, FUNC_END, PARAM, PARAM_END)

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        return scan_tagged(src, OPEN, lambda start, body: _call(src, start, body, tools))


def _call(src: Source, start: int, body: int, tools: Sequence[ToolSpec]) -> RawCall:
    text = src.text
    close = src.find(CLOSE, body)
    closed = close >= 0
    body_end = close if closed else len(text)
    end = close + len(CLOSE) if closed else len(text)
    if text[body:body_end].lstrip().startswith("{"):
        return json_envelope_call(text, start, text.index("{", body), body_end, end, closed=closed)
    call = RawCall(start, end, closed)
    func = src.find(FUNC, body, body_end)
    name_end = text.find(">", func + len(FUNC), body_end) if func >= 0 else -1
    if name_end < 0:
        if closed:
            call.error = f"no {FUNC}NAME> in the call"
        return call
    call.name = text[func + len(FUNC) : name_end].strip() or None
    types = param_types(call.name, tools)
    func_end = src.find(FUNC_END, name_end, body_end)
    limit = func_end if func_end >= 0 else body_end
    arguments: dict = {}
    pairs: list[str] = []
    pos = name_end + 1
    while (p := src.find(PARAM, pos, limit)) >= 0:
        key_end = text.find(">", p + len(PARAM), limit)
        value_end = _value_end(src, key_end + 1, limit) if key_end >= 0 else None
        if value_end is None:  # unfinished: wait (or, closed, give up on this parameter)
            if closed:
                call.status, call.error = ParseStatus.INVALID_ARGUMENTS, "a <parameter=...> that never ends"
            break
        key = text[p + len(PARAM) : key_end].strip()
        value = decode_value(_unpad(text[key_end + 1 : value_end]), types.get(key))
        arguments[key] = value
        pairs.append(pair_text(key, value))
        pos = value_end + len(PARAM_END) if src.at(PARAM_END, value_end) else value_end
    call.arguments = arguments
    call.args_text = args_json(pairs, closed=closed)
    return call


def _value_end(src: Source, pos: int, limit: int) -> int | None:
    """Where a parameter value ends: its `</parameter>`, else the next parameter or `</function>`."""
    ends = [at for m in (PARAM_END, PARAM) if (at := src.find(m, pos, limit)) >= 0]
    if ends:
        return min(ends)
    return limit if src.at(FUNC_END, limit) else None


def _unpad(value: str) -> str:
    """Drop the single newline the template writes after `>` and before `</parameter>`."""
    value = value.removeprefix("\n")
    return value.removesuffix("\n")
