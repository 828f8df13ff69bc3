"""`llama3_json`: Llama 3.x JSON tool calls `{"name": .., "parameters": {..}}`.

Calls open the turn (a `{`), follow `<|python_tag|>`, or stand on a line of their own after prose; several
calls are separated by `;` or whitespace. Text around them is content. A complete JSON object that names no
function (`{"a": 1} is my answer`) is content, not a call. A call object inside a line of prose
(`Here it is: {"name": ..} Anything else?`) is not the format, but vLLM's parser takes it: a lenient parse
does too (salvaged `inside_prose`), a strict one reports it INVALID_JSON. When no call of the turn is
usable, the whole text stays the message's content as well (the call statuses still say what failed):
Llama 3's template renders that content back, so the history matches what was sampled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from agentroll.types import ParseStatus, ToolSpec

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
INSIDE_PROSE = "a call inside a line of prose (Llama 3 calls open the turn or a line, or follow <|python_tag|>)"


class Llama3JsonParser(RegionParser):
    name = "llama3_json"
    markers = (PYTHON_TAG,)
    text_when_no_call = True

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        text = src.text
        tag = src.find(PYTHON_TAG)
        if tag < 0 or text.startswith("{", _skip(text, 0)):
            return _prose(src, 0, [])
        body = _skip(text, tag + len(PYTHON_TAG))
        if body >= len(text):  # the tag, then the turn ended
            return [TextRegion(0, tag), RawCall(tag, len(text), closed=False)]
        if not text.startswith("{", body):  # the tag holds no call: all prose, the tag too
            return _prose(src, 0, [])
        close = match_close(text, body, len(text))
        if close is not None and _names_nothing(text, body, close):
            return [TextRegion(0, len(text))]  # a JSON answer after the tag, not a call
        out: list[Region] = [TextRegion(0, tag)]
        pos = _chain(src, tag, tag + len(PYTHON_TAG), out, repair=None)
        return out if pos is None else _prose(src, pos, out)


def _prose(src: Source, pos: int, out: list[Region]) -> list[Region]:
    """Text from `pos` on, and the calls in it: an object on a line of its own is a call attempt (unless it
    names nothing); inside a line only a whole call object is (or one still being written)."""
    text = src.text
    i = text.find("{", pos)
    while i >= 0:
        close = match_close(text, i, len(text))
        line = _starts_line(text, i)
        if line and close is not None and _names_nothing(text, i, close):
            i = text.find("{", close)  # a JSON answer, not a call
            continue
        if line or (_is_call(text, i, close) if close is not None else _may_be_call(src, i)):
            out.append(TextRegion(pos, i))
            end = _chain(src, i, i, out, repair=None if line else "inside_prose")
            if end is None:
                return out
            pos = end
            i = text.find("{", pos)
            continue
        i = text.find("{", i + 1 if close is None else close)
    out.append(TextRegion(pos, len(text)))
    return out


def _chain(src: Source, start: int, pos: int, out: list[Region], repair: str | None) -> int | None:
    """Calls from `pos` on, separated by `;` or whitespace; the first one's region starts at `start`.
    Returns where the prose after them starts, or None when the turn ended inside a call."""
    text, first = src.text, True
    while True:
        i = _skip(text, pos)
        if text.startswith(";", i):  # separator between calls
            i = _skip(text, i + 1)
        if not text.startswith("{", i):
            # A lone trailing separator is not content (the next call may still be coming).
            return pos if text[pos:].strip(_WS) not in ("", ";") else len(text)
        close = match_close(text, i, len(text))
        if repair and not first and not (_is_call(text, i, close) if close is not None else _may_be_call(src, i)):
            return pos  # inside prose, only call objects chain
        if close is None:  # inside prose, an object still being written is not yet known to be a call
            whole = RawCall(start, len(text), closed=False)
            out.append(whole if repair else json_envelope_call(text, start, i, len(text), len(text), closed=False))
            return None
        call = json_envelope_call(text, start, i, close, close, closed=True)
        if repair and call.status is None:
            call.status, call.error, call.repair = ParseStatus.INVALID_JSON, INSIDE_PROSE, repair
        out.append(call)
        first, start = False, _skip(text, close)
        pos = close
        start = _skip(text, start + 1) if text.startswith(";", start) else start


def _starts_line(text: str, i: int) -> bool:
    """Only whitespace between the start of text[i]'s line and i."""
    return not text[text.rfind("\n", 0, i) + 1 : i].strip(_WS)


def _is_call(text: str, start: int, end: int) -> bool:
    """text[start:end] is a JSON object with a string name and arguments (what vLLM takes for a call)."""
    try:
        obj = json.loads(text[start:end])
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and isinstance(obj.get("name"), str) and ("parameters" in obj or "arguments" in obj)


def _may_be_call(src: Source, start: int) -> bool:
    """An unfinished object inside prose that may still become a call: only while more text may come (once
    the turn has ended, it is prose)."""
    text = src.text
    body = _skip(text, start + 1)
    if src.ended or not (body == len(text) or text[body] == '"'):
        return False
    return scan_call_object(text, start, len(text)).error is None


def _names_nothing(text: str, start: int, end: int) -> bool:
    """text[start:end] is a whole JSON object with neither a name nor arguments."""
    obj = scan_call_object(text, start, end)
    return obj.end == end and obj.error is None and obj.name is None and obj.args_start is None


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i
