"""Helpers for formats whose calls are JSON (hermes, llama3_json, mistral) or bracketed lists (pythonic)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agentroll.types import ParseStatus

from .regions import RawCall

_DECODER = json.JSONDecoder()
_WS = " \t\n\r"
NAME_KEYS = ("name",)
ARGS_KEYS = ("arguments", "parameters")


@dataclass(slots=True)
class CallObject:
    """What `scan_call_object` learned from a (possibly unfinished) `{"name": .., "arguments": ..}`."""

    end: int | None  # offset after the closing brace; None while unfinished
    name: str | None = None  # set once its string is complete
    args_start: int | None = None
    args_end: int | None = None  # None while the arguments value is unfinished
    extra: dict[str, Any] | None = None  # other complete top-level string/number fields (e.g. "id")
    error: str | None = None  # the text cannot become a JSON object


def scan_call_object(text: str, pos: int, end: int) -> CallObject:
    """Walk a JSON object in text[pos:end] key by key without needing it to be complete.

    Used both on finished calls and on streamed prefixes: a field is reported
    only once its value is complete, so nothing reported can change later.
    """
    out = CallObject(end=None, extra={})
    i = _skip_ws(text, pos, end)
    if i >= end:
        return out
    if text[i] != "{":
        out.error = "expected a JSON object"
        return out
    i += 1
    while True:
        i = _skip_ws(text, i, end)
        if i >= end:
            return out
        if text[i] == "}":
            out.end = i + 1
            return out
        if text[i] == ",":
            i = _skip_ws(text, i + 1, end)
            if i >= end:
                return out
        key, i = _read_value(text, i, end)
        if i is None:
            return out
        if not isinstance(key, str):
            out.error = "object keys must be strings"
            return out
        i = _skip_ws(text, i, end)
        if i >= end:
            return out
        if text[i] != ":":
            out.error = f"expected ':' after key {key!r}"
            return out
        i = _skip_ws(text, i + 1, end)
        if i >= end:
            return out
        if key in ARGS_KEYS and out.args_start is None:
            out.args_start = i
        value, j = _read_value(text, i, end)
        if j is None:
            return out
        if key in ARGS_KEYS and out.args_start == i:
            out.args_end = j
        elif key in NAME_KEYS and isinstance(value, str):
            out.name = value
        elif isinstance(value, str | int | float):
            out.extra[key] = value
        i = j


def _skip_ws(text: str, i: int, end: int) -> int:
    while i < end and text[i] in _WS:
        i += 1
    return i


def _read_value(text: str, i: int, end: int) -> tuple[Any, int | None]:
    """Decode one JSON value at i; (None, None) when it is unfinished or invalid so far."""
    try:
        value, j = _DECODER.raw_decode(text, i)  # no slicing: a value running past `end` is unfinished
    except json.JSONDecodeError:
        return None, None
    if j > end or (j == end and not isinstance(value, dict | list | str)):
        return None, None  # a number or literal at the very end may still grow (12 -> 123)
    return value, j


def json_envelope_call(text: str, start: int, body: int, body_end: int, end: int, *, closed: bool) -> RawCall:
    """A RawCall for a `{"name": .., "arguments"|"parameters": {..}}` object in text[body:body_end].

    [start, end) is the whole call including its markers. An envelope that is
    not one JSON object (bad JSON, trailing text) is INVALID_JSON; the name
    and argument text are still reported when readable, for the stream.
    """
    obj = scan_call_object(text, body, body_end)
    call = RawCall(start, end, closed, name=obj.name)
    extra = obj.extra or {}
    if isinstance(extra.get("id"), str):
        call.call_id = extra["id"]
    if obj.args_start is not None:
        call.args_text = text[obj.args_start : body_end if obj.args_end is None else obj.args_end]
    if not closed:
        return call
    if obj.end is None or obj.error or text[obj.end : body_end].strip():
        call.status = ParseStatus.INVALID_JSON
        call.error = _json_error(text[body:body_end])
    return call


def _json_error(body: str) -> str:
    try:
        json.loads(body)
    except json.JSONDecodeError as e:
        return f"tool call is not valid JSON: {e}"
    return "tool call is not a single JSON object"


_CLOSERS = {"{": "}", "[": "]", "(": ")"}
_STRUCTURE = {q: re.compile(r"[\[\](){}\\" + q + "]") for q in ('"', "\"'")}


def match_close(text: str, i: int, end: int, quotes: str = '"') -> int | None:
    """Offset after the bracket that closes the one at text[i], skipping quoted strings; None if
    text[i:end] ends first. Only nesting is checked, not validity: the caller decodes the span.
    A regex jumps between structural characters, so long strings cost C speed, not a Python loop."""
    stack: list[str] = []
    quote: str | None = None
    pattern = _STRUCTURE[quotes]
    while (m := pattern.search(text, i, end)) is not None:
        ch, i = m.group(), m.end()
        if quote is not None:
            if ch == "\\":
                i += 1  # skip the escaped character
            elif ch == quote:
                quote = None
        elif ch in quotes:
            quote = ch
        elif ch in _CLOSERS:
            stack.append(_CLOSERS[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
            if not stack:
                return i
    return None
