"""The tool-call parser protocol and the machinery every format shares.

A format is one class with a `scan(src)` method: it walks the text and returns
*regions* in order (content, reasoning, calls). Everything else is shared:
turning regions into a ParsedMessage (statuses, schema checks, ids), parsing
token IDs where only real special-token IDs count as markers, and streaming.

Conventions (the same for every format):
- `message.content` is the text outside calls, joined and stripped; None when
  that is empty or whitespace only. Reasoning likewise.
- A call's `span` is [start, end) in characters for `parse`, in token indices
  for `parse_ids`. A malformed call is a ParsedToolCall with a status, never
  an exception and never dropped.
- Call ids are `call_<index>` (index among all calls of the turn) unless the
  format carries its own (kimi's `functions.NAME:IDX`).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from agentroll.types import Message, ParsedMessage, ParsedToolCall, ParseStatus, ToolCall, ToolSpec

from .schema import check_arguments

_UNSET: Any = object()


@dataclass(slots=True, frozen=True)
class Delta:
    """One streamed piece, in the shape an OpenAI-compatible server streams.

    Content/reasoning deltas carry text; a tool-call delta carries `index`, and
    on its first delta `id` and `name`, then `arguments` text fragments.
    """

    content: str | None = None
    reasoning: str | None = None
    index: int | None = None
    id: str | None = None
    name: str | None = None
    arguments: str | None = None


@runtime_checkable
class StreamParser(Protocol):
    """Incremental parser for one turn. Deltas joined == the one-shot parse's content and arguments."""

    def feed(self, text: str) -> list[Delta]:
        """Take the next piece of model text; return what is now certain."""
        ...

    def flush(self) -> list[Delta]:
        """The turn ended: return what was held back (partial marker prefixes, trailing text)."""
        ...

    def finish(self) -> ParsedMessage:
        """The whole turn parsed; equal to `parse(all text fed)`."""
        ...


@runtime_checkable
class ToolCallParser(Protocol):
    """Assistant turn -> content + tool calls for one wire format (a vLLM `--tool-call-parser` name)."""

    name: str
    markers: tuple[str, ...]  # marker strings that may be single special tokens in a model's vocabulary

    def parse(self, text: str, tools: Sequence[ToolSpec] = ()) -> ParsedMessage: ...

    def parse_ids(
        self,
        token_ids: Sequence[int],
        tokenizer: Any,
        tools: Sequence[ToolSpec] = (),
        *,
        special_ids: Mapping[str, int] | None = None,
    ) -> ParsedMessage: ...

    def stream(self, tools: Sequence[ToolSpec] = ()) -> StreamParser: ...


# --- regions: what a format's scan returns -------------------------------------------------------


@dataclass(slots=True)
class TextRegion:
    """Plain text of the turn: content, or reasoning (e.g. harmony's analysis channel)."""

    start: int
    end: int
    kind: Literal["content", "reasoning"] = "content"


@dataclass(slots=True)
class RawCall:
    """A call as the format found it, before statuses are decided.

    While `closed` is False (the text ended inside the call) `name` must be set
    only once it is complete, and `args_text` must be a prefix of the argument
    text the finished call would have: streaming relies on both. A format that
    carries ids must set `call_id` no later than `name`.
    """

    start: int
    end: int
    closed: bool
    name: str | None = None
    args_text: str | None = None  # arguments as written (JSON text); None: the call carries none
    arguments: Any = _UNSET  # decoded arguments, for formats whose arguments are not JSON text
    call_id: str | None = None
    status: ParseStatus | None = None  # a failure the format decided itself (e.g. bad envelope JSON)
    error: str | None = None


Region = TextRegion | RawCall


class Source:
    """The text a format scans, and where its real markers are.

    From plain text every occurrence of a marker is real. From token IDs only
    a marker's special-token ID is (the same characters spelled with ordinary
    tokens are content); `span` maps character offsets back to token indices.
    """

    def __init__(self, text: str):
        self.text = text

    def find(self, marker: str, start: int = 0, end: int | None = None) -> int:
        """Offset of the next real `marker` in [start, end), or -1."""
        return self.text.find(marker, start, len(self.text) if end is None else end)

    def at(self, marker: str, pos: int) -> bool:
        """Is there a real `marker` starting exactly at `pos`?"""
        return self.find(marker, pos, pos + len(marker)) == pos

    def span(self, start: int, end: int) -> tuple[int, int]:
        """[start, end) in characters -> the unit this source reports spans in."""
        return start, end


class TokenSource(Source):
    """A Source decoded from token IDs; markers with a special ID count only as that ID."""

    def __init__(self, token_ids: Sequence[int], tokenizer: Any, special_ids: Mapping[str, int]):
        by_id = {i: m for m, i in special_ids.items()}
        self._tok = tokenizer
        self._ids = list(token_ids)
        self._special = set(special_ids)
        self._runs: list[tuple[int, int, int]] = []  # (char_start, token_start, token_end) of ordinary runs
        self._hits: dict[str, list[int]] = {m: [] for m in special_ids}
        self._tok_at: list[tuple[int, int]] = []  # (char_start, token_index) of every run/special token
        parts: list[str] = []
        pos, i, n = 0, 0, len(self._ids)
        while i < n:
            marker = by_id.get(self._ids[i])
            if marker is not None:
                self._hits[marker].append(pos)
                self._tok_at.append((pos, i))
                parts.append(marker)
                pos, i = pos + len(marker), i + 1
                continue
            j = i
            while j < n and self._ids[j] not in by_id:
                j += 1
            piece = tokenizer.decode(self._ids[i:j])
            self._runs.append((pos, i, j))
            self._tok_at.append((pos, i))
            parts.append(piece)
            pos, i = pos + len(piece), j
        self._tok_at.append((pos, n))
        super().__init__("".join(parts))

    def find(self, marker: str, start: int = 0, end: int | None = None) -> int:
        if marker not in self._special:  # not a single token in this vocabulary: its text is all there is
            return super().find(marker, start, end)
        end = len(self.text) if end is None else end
        hits = self._hits[marker]
        k = bisect.bisect_left(hits, start)
        return hits[k] if k < len(hits) and hits[k] + len(marker) <= end else -1

    def span(self, start: int, end: int) -> tuple[int, int]:
        return self._token_index(start, round_up=False), self._token_index(end, round_up=True)

    def _token_index(self, char: int, *, round_up: bool) -> int:
        k = bisect.bisect_right(self._tok_at, (char, len(self._ids) + 1)) - 1
        base_char, base_tok = self._tok_at[max(k, 0)]
        if char == base_char:
            return base_tok
        run = next(((c, s, e) for c, s, e in self._runs if s == base_tok), None)
        if run is None:  # inside a special token: snap to its edge
            return base_tok + 1 if round_up else base_tok
        # Inside an ordinary run: binary-search the shortest decoded prefix reaching `char`.
        # Decoded prefix lengths grow with the token count (a split multi-byte character may
        # count as one replacement char), so the answer is exact at character boundaries.
        c0, s, e = run
        lo, hi = s, e
        while lo < hi:
            mid = (lo + hi) // 2
            if c0 + len(self._tok.decode(self._ids[s:mid])) >= char:
                hi = mid
            else:
                lo = mid + 1
        if round_up or c0 + len(self._tok.decode(self._ids[s:lo])) == char:
            return lo
        return lo - 1


def discover_special_ids(tokenizer: Any, markers: Iterable[str]) -> dict[str, int]:
    """Markers that `tokenizer` encodes as one ID (and decodes back verbatim): its special tokens."""
    found: dict[str, int] = {}
    for m in markers:
        ids = list(tokenizer.encode(m))
        if len(ids) == 1 and tokenizer.decode(ids) == m:
            found[m] = ids[0]
    return found


# --- regions -> ParsedMessage ---------------------------------------------------------------------


def call_id_for(index: int) -> str:
    """The deterministic id of the index-th call of a turn (formats without their own ids)."""
    return f"call_{index}"


def finalize_call(raw: RawCall, index: int, src: Source, tools: Sequence[ToolSpec]) -> ParsedToolCall:
    """Decide a call's status; `call` is set whenever a name and an argument object were recovered."""
    text, span = src.text[raw.start : raw.end], src.span(raw.start, raw.end)

    def bad(status: ParseStatus, error: str) -> ParsedToolCall:
        return ParsedToolCall(status=status, raw=text, span=span, error=error)

    if not raw.closed:
        return bad(ParseStatus.TRUNCATED, "the turn ended inside this tool call")
    if raw.status is not None:
        return bad(raw.status, raw.error or raw.status.value)
    if not raw.name:
        return bad(ParseStatus.MISSING_NAME, raw.error or "the call names no function")
    args = raw.arguments
    if args is _UNSET:
        if raw.args_text is None:
            args = {}
        else:
            try:
                args = json.loads(raw.args_text)
            except json.JSONDecodeError as e:
                return bad(ParseStatus.INVALID_JSON, f"arguments are not JSON: {e}")
    if not isinstance(args, dict):
        return bad(ParseStatus.INVALID_ARGUMENTS, f"arguments must be an object, got {type(args).__name__}")
    call = ToolCall(id=raw.call_id or call_id_for(index), name=raw.name, arguments=args, raw=raw.args_text)
    status, error = check_arguments(raw.name, args, tools)
    return ParsedToolCall(status=status, raw=text, span=span, call=call, error=error)


def joined_text(src: Source, regions: Sequence[Region], kind: str) -> str | None:
    """Text regions of one kind, joined and stripped; None when nothing but whitespace."""
    text = "".join(src.text[r.start : r.end] for r in regions if isinstance(r, TextRegion) and r.kind == kind)
    return text.strip() or None


def build_message(src: Source, regions: Sequence[Region], tools: Sequence[ToolSpec]) -> ParsedMessage:
    raws = [r for r in regions if isinstance(r, RawCall)]
    parsed = tuple(finalize_call(r, i, src, tools) for i, r in enumerate(raws))
    message = Message(
        role="assistant",
        content=joined_text(src, regions, "content"),
        reasoning=joined_text(src, regions, "reasoning"),
        tool_calls=tuple(p.call for p in parsed if p.call is not None),
    )
    return ParsedMessage(message=message, tool_calls=parsed)


# --- the base class formats subclass --------------------------------------------------------------


class RegionParser:
    """Base for formats: subclasses set `name`, `markers` and implement `scan`."""

    name: str = ""
    markers: tuple[str, ...] = ()

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        """Regions of the text in order. Must not raise on any input, and on a prefix of a text must
        classify it as the full text would (content stays content; an open call is a RawCall with
        closed=False). `tools` may inform argument decoding (qwen3_coder's schema types)."""
        raise NotImplementedError

    def parse(self, text: str, tools: Sequence[ToolSpec] = ()) -> ParsedMessage:
        src = Source(text)
        return build_message(src, self.scan(src, tools), tools)

    def parse_ids(
        self,
        token_ids: Sequence[int],
        tokenizer: Any,
        tools: Sequence[ToolSpec] = (),
        *,
        special_ids: Mapping[str, int] | None = None,
    ) -> ParsedMessage:
        """Parse sampled IDs. Only a marker's special ID is a marker (`special_ids`, or those markers
        the tokenizer encodes as one ID); markers without one in this vocabulary match as text."""
        if special_ids is None:
            special_ids = discover_special_ids(tokenizer, self.markers)
        src = TokenSource(token_ids, tokenizer, {m: i for m, i in special_ids.items() if m in self.markers})
        return build_message(src, self.scan(src, tools), tools)

    def stream(self, tools: Sequence[ToolSpec] = ()) -> StreamParser:
        from .stream import RegionStreamParser

        return RegionStreamParser(self, tools)


# --- helpers for JSON-envelope formats (hermes, llama3_json, mistral) ------------------------------

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
