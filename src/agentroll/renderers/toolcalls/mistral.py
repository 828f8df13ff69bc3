"""Mistral tool calls (vLLM `--tool-call-parser mistral`), both wire forms:

- v3 .. v7: `[TOOL_CALLS][{"name": "f", "arguments": {...}, "id": "a1b2c3d4e"}, ...]`
  (one marker, a JSON list; the id is optional and kept when present);
- v11+:     `[TOOL_CALLS]f[ARGS]{...}[TOOL_CALLS]g[CALL_ID]a1b2c3d4e[ARGS]{...}`
  (one marker per call; `[CALL_ID]` only in v11).

Text before the first marker (and any text after a finished list) is content. A list the turn ended in
before its `]` ends in a TRUNCATED call (vLLM returns no calls at all then).

Two breaks vLLM's parser repairs, so a lenient parse does too (salvaged; strict: INVALID_JSON):
- `args_marker_missing`: `[TOOL_CALLS]name{...}`, a v11+ call without `[ARGS]` (text decoded with the
  special tokens skipped drops it);
- `text_before_calls`: `[TOOL_CALLS] junk [{...}]`, text between the marker and a v3 list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from agentroll.types import ParseStatus, ToolSpec

from .base import RawCall, Region, RegionParser, Source, TextRegion, scan_call_object

CALLS, ARGS, CALL_ID = "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"
_WS = " \t\n\r"
_NAME = re.compile(r"\s*([\w.\-]+)\s*")  # a function name, as v11+ writes it after the marker
_LIST = re.compile(r"\[\s*\{")  # where a v3 list of call objects opens
_NAMED_SO_FAR = re.compile(r"\s*[\w.\-]*\s*(\[CALL_ID\]\s*\w*\s*)?")  # a v11+ call before its [ARGS]


class MistralParser(RegionParser):
    name = "mistral"
    markers = (CALLS, ARGS, CALL_ID)

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        text, n = src.text, len(src.text)
        regions: list[Region] = []
        pos = 0
        while pos < n:
            mark = src.find(CALLS, pos)
            if mark < 0:
                regions.append(TextRegion(pos, n))
                break
            if mark > pos:
                regions.append(TextRegion(pos, mark))
            body = _skip_ws(text, mark + len(CALLS), n)
            if body < n and text[body] in "[{":
                pos = _scan_json_calls(src, mark, body, regions)
            else:
                pos = _scan_named_call(src, mark, regions)
        return regions


def _skip_ws(text: str, i: int, end: int) -> int:
    while i < end and text[i] in _WS:
        i += 1
    return i


def _json_error(text: str, start: int, end: int) -> str | None:
    """Why text[start:end] can never become JSON; None when it may still be completed."""
    try:
        json.loads(text[start:end])
    except json.JSONDecodeError as e:
        if e.msg.startswith("Unterminated string") or start + e.pos >= len(text[:end].rstrip(_WS)):
            return None  # the error is at the very end: more text could fix it
        return f"invalid JSON: {e}"
    return None


def _scan_json_calls(src: Source, mark: int, body: int, regions: list[Region]) -> int:
    """The v3 list (or bare objects); returns where scanning goes on.

    A call's raw text runs from the end of the previous one (the first: from the marker)
    through its own "," or "]": tokenizers merge `"},` and `"}]` into one token, and a
    call's token span must not cut a token.
    """
    text = src.text
    end = src.find(CALLS, body)
    end = len(text) if end < 0 else end
    i = body + 1 if text[body] == "[" else body
    start = mark
    while True:
        i = _skip_ws(text, i, end)
        if i >= end:
            if start == mark:  # nothing after the marker yet: an open call
                regions.append(RawCall(start=mark, end=end, closed=end < len(text)))
            elif text[body] == "[" and end == len(text):  # the turn ended before the list's "]"
                last = regions[-1]
                assert isinstance(last, RawCall)
                last.closed = False
            return end
        if text[i] in ",]":  # a stray separator or the list's end, outside any call
            if text[i] == "]":
                return i + 1
            i += 1
            continue
        obj = scan_call_object(text, i, end)
        error = obj.error or (_json_error(text, i, end) if obj.end is None else None)
        if error is not None:
            regions.append(RawCall(start, end, True, status=ParseStatus.INVALID_JSON, error=error))
            return end
        call_id = obj.extra.get("id") if obj.extra else None
        call_id = None if call_id is None else str(call_id)
        args_text = None
        if obj.args_start is not None:
            args_text = text[obj.args_start : obj.args_end if obj.args_end is not None else end]
        if obj.end is None:
            # The id follows the name in this format; streaming must not announce a call before its id.
            name = obj.name if call_id is not None else None
            regions.append(RawCall(start, end, end < len(text), name=name, args_text=args_text, call_id=call_id))
            return end
        stop = obj.end + 1 if text[obj.end : obj.end + 1] in (",", "]") else obj.end
        regions.append(RawCall(start, stop, True, name=obj.name, args_text=args_text, call_id=call_id))
        if text[stop - 1] == "]":
            return stop
        i = start = stop


def _scan_named_call(src: Source, mark: int, regions: list[Region]) -> int:
    """One v11+ call: NAME [CALL_ID ID] [ARGS] {json}; returns where scanning goes on."""
    text, n = src.text, len(src.text)
    start = mark + len(CALLS)
    nxt = src.find(CALLS, start)
    seg_end = n if nxt < 0 else nxt
    args = src.find(ARGS, start, seg_end)
    if args < 0:
        return _without_args_marker(src, mark, seg_end, regions)
    cid = src.find(CALL_ID, start, args)
    name = text[start : cid if cid >= 0 else args].strip()
    call_id = text[cid + len(CALL_ID) : args].strip() if cid >= 0 else None
    return _named_arguments(src, mark, _skip_ws(text, args + len(ARGS), seg_end), seg_end, regions, name, call_id)


def _named_arguments(
    src: Source, mark: int, j: int, seg_end: int, regions: list[Region], name: str, call_id: str | None
) -> int:
    """The JSON arguments of a named call at `j`; text after them (to the next marker) is content."""
    text, closed_by_next = src.text, seg_end < len(src.text)
    try:
        _, k = json.JSONDecoder().raw_decode(text[:seg_end], j)
    except json.JSONDecodeError as e:
        if not closed_by_next and _json_error(text, j, seg_end) is None:
            regions.append(RawCall(mark, seg_end, False, name=name or None, args_text=text[j:seg_end], call_id=call_id))
        else:
            regions.append(
                RawCall(mark, seg_end, True, name=name or None, status=ParseStatus.INVALID_JSON, error=str(e))
            )
        return seg_end
    regions.append(RawCall(mark, k, True, name=name or None, args_text=text[j:k], call_id=call_id or None))
    if k < seg_end:
        regions.append(TextRegion(k, seg_end))
    return seg_end


def _without_args_marker(src: Source, mark: int, seg_end: int, regions: list[Region]) -> int:
    """After the marker, no `[ARGS]`: a name then `{` (v11+ with the marker skipped), a name still being
    written, junk then a v3 list, or nothing that is a call."""
    text, start = src.text, mark + len(CALLS)
    closed_by_next = seg_end < len(text)
    name = _NAME.match(text, start, seg_end)
    after = name.end() if name else _skip_ws(text, start, seg_end)
    if name and text.startswith("{", after):
        k = len(regions)
        _named_arguments(src, mark, after, seg_end, regions, name.group(1), None)
        _repairable(regions[k : k + 1], "args_marker_missing", f"no {ARGS} between the name and its arguments")
        return seg_end
    if not closed_by_next and _NAMED_SO_FAR.fullmatch(text, start, seg_end):  # the turn ended before [ARGS]
        regions.append(RawCall(mark, seg_end, False))
        return seg_end
    if (found := _LIST.search(text, start, seg_end)) is not None:
        k = len(regions)
        pos = _scan_json_calls(src, mark, found.start(), regions)
        _repairable(regions[k:], "text_before_calls", f"text between {CALLS} and the list of calls")
        return pos
    error = f"no [ARGS] after name {text[start:seg_end].strip()!r}" if name else f"no call after {CALLS}"
    regions.append(RawCall(mark, seg_end, True, status=ParseStatus.INVALID_JSON, error=error))
    return seg_end


def _repairable(regions: Sequence[Region], repair: str, error: str) -> None:
    """Mark the well-formed calls among `regions` as a format break a lenient parse repairs."""
    for r in regions:
        if isinstance(r, RawCall) and r.closed and r.status is None:
            r.status, r.error, r.repair = ParseStatus.INVALID_JSON, error, repair
