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

Modules: regions.py (what scan returns), source.py (text or token IDs to
scan), jsontext.py (JSON-envelope and bracket helpers), schema.py (tool
checks), stream.py (streaming), sections.py (section-wrapped formats).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from agentroll.types import Message, ParsedMessage, ParsedToolCall, ParseMode, ParseStatus, ToolCall, ToolSpec

from .jsontext import CallObject, json_envelope_call, match_close, scan_call_object
from .regions import UNSET, RawCall, Region, TextRegion
from .schema import check_arguments, only_string_parameter
from .source import Source, TokenSource, discover_special_ids

# Formats import their building blocks from here.
__all__ = [
    "CallObject",
    "Delta",
    "RawCall",
    "Region",
    "RegionParser",
    "Source",
    "StreamParser",
    "TextRegion",
    "TokenSource",
    "ToolCallParser",
    "build_message",
    "call_id_for",
    "discover_special_ids",
    "finalize_call",
    "is_json_object",
    "json_envelope_call",
    "match_close",
    "scan_call_object",
]


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

    def parse(self, text: str, tools: Sequence[ToolSpec] = (), *, mode: ParseMode = "strict") -> ParsedMessage: ...

    def parse_ids(
        self,
        token_ids: Sequence[int],
        tokenizer: Any,
        tools: Sequence[ToolSpec] = (),
        *,
        special_ids: Mapping[str, int] | None = None,
        mode: ParseMode = "strict",
    ) -> ParsedMessage: ...

    def stream(self, tools: Sequence[ToolSpec] = (), *, mode: ParseMode = "strict") -> StreamParser: ...


# --- regions -> ParsedMessage ---------------------------------------------------------------------


def call_id_for(index: int) -> str:
    """The deterministic id of the index-th call of a turn (formats without their own ids)."""
    return f"call_{index}"


def finalize_call(
    raw: RawCall, index: int, src: Source, tools: Sequence[ToolSpec], mode: ParseMode = "strict"
) -> ParsedToolCall:
    """Decide a call's status; `call` is set whenever a name and an argument object were recovered.

    Lenient repairs (the call is usable and says why in `salvaged`): a call whose own body was complete when
    the turn ended before its closing marker (`raw.complete`), a format break the scan named (`raw.repair`),
    arguments given as a JSON-encoded string of an object, and a bare string for the arguments of a tool that
    takes one string. Strict reports each with its failure status (TRUNCATED, the scan's status,
    INVALID_ARGUMENTS)."""
    text, span = src.text[raw.start : raw.end], src.span(raw.start, raw.end)
    lenient, salvaged = mode == "lenient", None

    def bad(status: ParseStatus, error: str) -> ParsedToolCall:
        return ParsedToolCall(status=status, raw=text, span=span, error=error)

    if not raw.closed:
        if not (lenient and raw.complete):
            return bad(ParseStatus.TRUNCATED, "the turn ended inside this tool call")
        salvaged = "unclosed"
    if raw.status is not None:
        if not (lenient and raw.repair):
            return bad(raw.status, raw.error or raw.status.value)
        salvaged = salvaged or raw.repair
    if not raw.name:
        return bad(ParseStatus.MISSING_NAME, raw.error or "the call names no function")
    args = raw.arguments
    if args is UNSET:
        if raw.args_text is None:
            args = {}
        else:
            try:
                args = json.loads(raw.args_text)
            except json.JSONDecodeError as e:
                return bad(ParseStatus.INVALID_JSON, f"arguments are not JSON: {e}")
    if lenient and isinstance(args, str) and isinstance(inner := _json_object(args), dict):
        args, salvaged = inner, salvaged or "arguments_string"
    elif lenient and isinstance(args, str) and (param := only_string_parameter(raw.name, tools)) is not None:
        args, salvaged = {param: args}, salvaged or "arguments_bare_string"
    if not isinstance(args, dict):
        return bad(ParseStatus.INVALID_ARGUMENTS, f"arguments must be an object, got {type(args).__name__}")
    call = ToolCall(id=raw.call_id or call_id_for(index), name=raw.name, arguments=args, raw=raw.args_text)
    status, error = check_arguments(raw.name, args, tools)
    return ParsedToolCall(status=status, raw=text, span=span, call=call, error=error, salvaged=salvaged)


def _json_object(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def is_json_object(text: str) -> bool:
    """`text` is exactly one JSON object (whitespace around it allowed)."""
    return isinstance(_json_object(text), dict)


def joined_text(src: Source, regions: Sequence[Region], kind: str) -> str | None:
    """Text regions of one kind, joined and stripped; None when nothing but whitespace."""
    text = "".join(src.text[r.start : r.end] for r in regions if isinstance(r, TextRegion) and r.kind == kind)
    return text.strip() or None


def build_message(
    src: Source,
    regions: Sequence[Region],
    tools: Sequence[ToolSpec],
    mode: ParseMode = "strict",
    *,
    text_when_no_call: bool = False,
) -> ParsedMessage:
    """`text_when_no_call`: a turn that yields no usable call keeps all its text as content (templates that
    render a turn's content in place of its calls, e.g. Llama 3: the history then renders back as sampled)."""
    raws = [r for r in regions if isinstance(r, RawCall)]
    parsed = tuple(finalize_call(r, i, src, tools, mode) for i, r in enumerate(raws))
    content = joined_text(src, regions, "content")
    if text_when_no_call and raws and not any(p.call for p in parsed):
        content = src.text.strip() or None
    message = Message(
        role="assistant",
        content=content,
        reasoning=joined_text(src, regions, "reasoning"),
        tool_calls=tuple(p.call for p in parsed if p.call is not None),
    )
    return ParsedMessage(message=message, tool_calls=parsed)


def scan_tagged(src: Source, open_marker: str, read_call: Callable[[int, int], RawCall]) -> list[Region]:
    """Regions of a format whose calls each start with `open_marker` (hermes, glm45, qwen3_coder).

    `read_call(start, body)` reads one call from its marker at `start` (body = just after it); text
    between calls is content, and an unclosed call ends the scan (the turn ended inside it).
    """
    pos, out = 0, []
    while (start := src.find(open_marker, pos)) >= 0:
        out.append(TextRegion(pos, start))
        call = read_call(start, start + len(open_marker))
        out.append(call)
        if not call.closed:
            return out
        pos = call.end
    out.append(TextRegion(pos, len(src.text)))
    return out


# --- the base class formats subclass --------------------------------------------------------------


class RegionParser:
    """Base for formats: subclasses set `name`, `markers` and implement `scan`."""

    name: str = ""
    markers: tuple[str, ...] = ()
    text_when_no_call: bool = False  # see build_message

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        """Regions of the text in order. Must not raise on any input, and on a prefix of a text must
        classify it as the full text would (content stays content; an open call is a RawCall with
        closed=False). `tools` may inform argument decoding (qwen3_coder's schema types)."""
        raise NotImplementedError

    def parse(self, text: str, tools: Sequence[ToolSpec] = (), *, mode: ParseMode = "strict") -> ParsedMessage:
        src = Source(text)
        return self._message(src, tools, mode)

    def parse_ids(
        self,
        token_ids: Sequence[int],
        tokenizer: Any,
        tools: Sequence[ToolSpec] = (),
        *,
        special_ids: Mapping[str, int] | None = None,
        mode: ParseMode = "strict",
    ) -> ParsedMessage:
        """Parse sampled IDs. Only a marker's special ID is a marker (`special_ids`, or those markers
        the tokenizer encodes as one ID); markers without one in this vocabulary match as text."""
        if special_ids is None:
            special_ids = discover_special_ids(tokenizer, self.markers)
        src = TokenSource(token_ids, tokenizer, {m: i for m, i in special_ids.items() if m in self.markers})
        return self._message(src, tools, mode)

    def stream(self, tools: Sequence[ToolSpec] = (), *, mode: ParseMode = "strict") -> StreamParser:
        from .stream import RegionStreamParser

        return RegionStreamParser(self, tools, mode)

    def _message(self, src: Source, tools: Sequence[ToolSpec], mode: ParseMode) -> ParsedMessage:
        return build_message(src, self.scan(src, tools), tools, mode, text_when_no_call=self.text_when_no_call)
