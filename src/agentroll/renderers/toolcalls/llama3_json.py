"""`llama3_json`: Llama 3.x JSON tool calls `{"name": .., "parameters": {..}}`.

Calls start at the beginning of the turn (a `{`) or after `<|python_tag|>`;
several calls are separated by `;`. Text before `<|python_tag|>` and after the
last call is content. A turn that starts with `{` is taken as a call, as vLLM
does: a bare JSON object without a name is MISSING_NAME, not content.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentroll.types import ToolSpec

from .base import Region, RegionParser, Source, TextRegion, json_envelope_call, match_close

PYTHON_TAG = "<|python_tag|>"
_WS = " \t\r\n"


class Llama3JsonParser(RegionParser):
    name = "llama3_json"
    markers = (PYTHON_TAG,)

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        text = src.text
        first = len(text) - len(text.lstrip(_WS))
        tag = src.find(PYTHON_TAG)
        if tag >= 0 and not text[first:tag].lstrip(_WS).startswith("{"):
            start, pos = tag, tag + len(PYTHON_TAG)  # content, then the tag, then calls
        elif text.startswith("{", first):
            start, pos = first, first
        else:
            return [TextRegion(0, len(text))]
        out: list[Region] = [TextRegion(0, start)]
        while True:
            i = _skip(text, pos)
            if text.startswith(";", i):  # separator between calls
                i = _skip(text, i + 1)
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
            out.append(json_envelope_call(text, start, i, close, close, closed=True))
            start = pos = close
            start = _skip(text, start)
            start = _skip(text, start + 1) if text.startswith(";", start) else start


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i
