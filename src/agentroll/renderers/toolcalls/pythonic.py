"""`pythonic`: a Python list of calls, `[get_weather(city="Paris"), f(a=1)]` (Llama 3.2/4, ToolACE).

The list must open the turn (after whitespace, and `<|python_start|>` for
Llama 4); text after it is content, as is a turn that does not start with `[`.
It is parsed with `ast` and values read with `ast.literal_eval`, never run;
`true`/`false`/`null` are accepted for JSON-minded models. Argument text is
the canonical JSON of the decoded arguments. When the list as a whole is not
Python (one call has a broken quote), it is cut between calls and each call
is read on its own: the good ones are kept, in both modes, and each piece
that does not parse is INVALID_JSON.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from typing import Any

from agentroll.types import ParseStatus, ToolSpec

from .base import RawCall, Region, RegionParser, Source, TextRegion, match_close

START, END = "<|python_start|>", "<|python_end|>"
_JSON_NAMES = {"true": True, "false": False, "null": None}
# Where one call may end and the next begin: `)`, a comma, then a (dotted) name and `(`.
_BETWEEN_CALLS = re.compile(r"\)(\s*,\s*)(?=[A-Za-z_][\w.]*\s*\()")


class PythonicParser(RegionParser):
    name = "pythonic"
    markers = (START, END)

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        text = src.text
        start = begin = len(text) - len(text.lstrip())
        tagged = src.at(START, begin)
        if tagged:
            begin += len(START)
            begin += len(text[begin:]) - len(text[begin:].lstrip())
        if tagged and not text.startswith("[", begin):
            return _not_a_list(src, start, begin)
        if not text.startswith("[", begin):
            return [TextRegion(0, len(text))]
        close = match_close(text, begin, len(text), quotes="\"'") or _closed_at_the_end(src, begin)
        if close is None:
            return [RawCall(start, len(text), closed=False)]
        end = close
        rest = end + len(text[end:]) - len(text[end:].lstrip())
        if src.at(END, rest):
            end = rest + len(END)
        return [*_calls(text, start, begin, close, end), TextRegion(end, len(text))]


def _closed_at_the_end(src: Source, begin: int) -> int | None:
    """Offset after the `]` that ends the turn (before `<|python_end|>`, if any) when, counting brackets
    but not quotes, it closes the list at `begin`: a list whose quotes do not pair up (a broken string in
    one call) still ends there. None while more text may come (it may be a string still being written)
    or when the turn does not end so."""
    text = src.text.rstrip()
    if text.endswith(END) and src.at(END, len(text) - len(END)):
        text = text[: -len(END)].rstrip()
    if not src.ended or not text.endswith("]"):
        return None
    depth = 0
    for i in range(begin, len(text)):
        depth += {"[": 1, "(": 1, "{": 1, "]": -1, ")": -1, "}": -1}.get(text[i], 0)
        if depth <= 0:
            return i + 1 if i == len(text) - 1 and depth == 0 else None
    return None


def _not_a_list(src: Source, start: int, begin: int) -> list[Region]:
    """After the tag comes something other than a list: one bad call up to the closing tag."""
    if begin == len(src.text):
        return [RawCall(start, begin, closed=False)]
    close = src.find(END, begin)
    if close < 0:
        return [RawCall(start, len(src.text), closed=False)]
    end = close + len(END)
    bad = RawCall(start, end, True, status=ParseStatus.INVALID_JSON, error="the tag holds no list of calls")
    return [bad, TextRegion(end, len(src.text))]


def _calls(text: str, start: int, begin: int, close: int, end: int) -> list[RawCall]:
    source = text[begin:close]
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError:
        return _calls_one_by_one(text, start, begin, close, end)
    if not isinstance(tree, ast.List):
        return [RawCall(start, end, True, status=ParseStatus.INVALID_JSON, error="not a list of calls")]
    offsets = _line_offsets(source)
    calls = []
    for i, node in enumerate(tree.elts):
        # The first call's span starts with the list (and tag), the last one's ends with it.
        a = start if i == 0 else begin + _offset(source, offsets, node.lineno, node.col_offset)
        b = end if i == len(tree.elts) - 1 else begin + _offset(source, offsets, node.end_lineno, node.end_col_offset)
        calls.append(_call(node, a, b))
    return calls or [RawCall(start, end, True, status=ParseStatus.MISSING_NAME, error="an empty call list")]


def _calls_one_by_one(text: str, start: int, begin: int, close: int, end: int) -> list[RawCall]:
    """A list that is not Python as a whole: cut it where one call may end and the next begin, and read the
    shortest run of pieces that parses as one call, again and again; a piece no run starting there makes a
    call of is INVALID_JSON. (A cut inside a string literal is healed by the longer run.)"""
    pieces, a = [], begin + 1
    for m in _BETWEEN_CALLS.finditer(text, begin + 1, close - 1):
        pieces.append((a, m.start() + 1))
        a = m.end()
    pieces.append((a, close - 1))
    found: list[tuple[int, int, ast.expr | str]] = []
    i = 0
    while i < len(pieces):
        for j in range(i, len(pieces)):
            a, b = pieces[i][0], pieces[j][1]
            node = _one_call(text[a:b])
            if isinstance(node, ast.Call):
                found.append((a, b, node))
                i = j + 1
                break
        else:
            a, b = pieces[i]
            found.append((a, b, _one_call(text[a:b])))
            i += 1
    calls = []
    for k, (a, b, node) in enumerate(found):
        a, b = start if k == 0 else a, end if k == len(found) - 1 else b  # the list's brackets go to its ends
        if isinstance(node, str):
            calls.append(RawCall(a, b, True, status=ParseStatus.INVALID_JSON, error=f"not a Python call: {node}"))
        else:
            calls.append(_call(node, a, b))
    return calls


def _one_call(source: str) -> ast.expr | str:
    """The expression `source` holds (a call, or some other element), or why it is not Python."""
    try:
        return ast.parse(source.strip(), mode="eval").body
    except SyntaxError as e:
        return e.msg


def _call(node: ast.expr, start: int, end: int) -> RawCall:
    call = RawCall(start, end, True)
    if not isinstance(node, ast.Call):
        call.error = "a list element that is not a call"
        return call
    call.name = _dotted(node.func)
    if call.name is None:
        call.error = "the called thing is not a name"
        return call
    if node.args:
        call.status, call.error = ParseStatus.INVALID_ARGUMENTS, "positional arguments; only keywords name parameters"
        return call
    if any(kw.arg is None for kw in node.keywords):
        call.status, call.error = ParseStatus.INVALID_ARGUMENTS, "**kwargs is not a literal argument"
        return call
    args = {}
    for kw in node.keywords:
        try:
            args[kw.arg] = _literal(kw.value)
        except ValueError:
            call.status = ParseStatus.INVALID_ARGUMENTS
            call.error = f"argument {kw.arg}= is not a literal: {ast.unparse(kw.value)}"
            return call
    try:  # sets, bytes, complex numbers, NaN: Python literals with no JSON value
        call.args_text = json.dumps(args, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        call.status, call.error = ParseStatus.INVALID_ARGUMENTS, f"an argument has no JSON value: {e}"
        return call
    call.arguments = json.loads(call.args_text)  # what the tool receives is what the text says (keys as strings)
    return call


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True) if k is not None}
    return ast.literal_eval(node)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value)):
        return f"{base}.{node.attr}"
    return None


def _line_offsets(source: str) -> list[int]:
    offsets, pos = [0], 0
    for line in source.splitlines(keepends=True):
        pos += len(line)
        offsets.append(pos)
    return offsets


def _offset(source: str, offsets: list[int], lineno: int | None, col: int | None) -> int:
    """ast's (line, UTF-8 byte column) -> character offset in `source`."""
    line_start = offsets[(lineno or 1) - 1]
    line = source[line_start : offsets[lineno or 1] if (lineno or 1) < len(offsets) else len(source)]
    return line_start + len(line.encode("utf-8")[: col or 0].decode("utf-8", errors="ignore"))
