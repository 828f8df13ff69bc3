"""`llama3_json`: Llama 3.x JSON tool calls `{"name": .., "parameters": {..}}`.

Calls start at the beginning of the turn (a `{`), after `<|python_tag|>`, or on a line of their own after
prose (vLLM finds them there too); several calls are separated by `;`. Text before the calls and after the
last one is content. A complete JSON object that names no function (`{"a": 1} is my answer`) is content, not
a call. When no call of the turn is usable, the whole text stays the message's content as well (the call
statuses still say what failed): Llama 3's template renders that content back, so the history matches what
was sampled.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentroll.types import ToolSpec

from .base import (
    RawCall,
    Region,
    RegionParser,
    Source,
    TextRegion,
    json_envelope_call,
    match_close,
    scan_call_object,
)

PYTHON_TAG = "<|python_tag|>"
_WS = " \t\r\n"


class Llama3JsonParser(RegionParser):
    name = "llama3_json"
    markers = (PYTHON_TAG,)
    text_when_no_call = True

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        text = src.text
        first = _skip(text, 0)
        tag = src.find(PYTHON_TAG)
        if tag >= 0 and not text.startswith("{", first):
            start, pos = tag, tag + len(PYTHON_TAG)  # content, then the tag, then calls
        elif text.startswith("{", first):
            start, pos = first, first
        elif (line := _object_on_own_line(text)) is not None:
            start, pos = line, line  # prose, then calls on a line of their own
        else:
            return [TextRegion(0, len(text))]
        out: list[Region] = [TextRegion(0, start)]
        while True:
            i = _skip(text, pos)
            if text.startswith(";", i):  # separator between calls
                i = _skip(text, i + 1)
            if i >= len(text) and len(out) == 1 and start == tag:  # the tag, then the turn ended
                out.append(RawCall(start, len(text), closed=False))
                return out
            if not text.startswith("{", i):
                # What follows the calls is content; a lone trailing separator is not (the next
                # call may still be coming).
                if text[pos:].strip(_WS) not in ("", ";"):
                    out.append(TextRegion(pos, len(text)))
                return out
            close = match_close(text, i, len(text))
            if close is None:
                out.append(json_envelope_call(text, start, i, len(text), len(text), closed=False))
                return out
            if len(out) == 1 and _names_nothing(text, i, close):
                return [TextRegion(0, len(text))]  # a JSON answer, not a call
            out.append(json_envelope_call(text, start, i, close, close, closed=True))
            start = pos = close
            start = _skip(text, start)
            start = _skip(text, start + 1) if text.startswith(";", start) else start


def _object_on_own_line(text: str) -> int | None:
    """Offset of the first `{` that starts a line after some prose; None when there is none."""
    i = text.find("\n{")
    while i >= 0:
        if text[:i].strip(_WS):
            return i + 1
        i = text.find("\n{", i + 1)
    return None


def _names_nothing(text: str, start: int, end: int) -> bool:
    """text[start:end] is a whole JSON object with neither a name nor arguments."""
    obj = scan_call_object(text, start, end)
    return obj.end == end and obj.error is None and obj.name is None and obj.args_start is None


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i
