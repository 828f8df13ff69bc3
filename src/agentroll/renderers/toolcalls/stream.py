"""Streaming for every format: re-scan the settled buffer and send only what grew.

Simple on purpose: a format's `scan` is already required to classify a prefix
as the full text would, so whatever a prefix shows (stripped content, a
complete name, an argument-text prefix) is final and can be sent. The only
thing held back is a tail that could be the start of a marker split across
chunks. Each feed re-scans the buffer: O(len x feeds), fine for one turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentroll.types import ParsedMessage, ParseMode, ToolSpec

from .base import Delta, RawCall, Source, TextRegion, call_id_for

if TYPE_CHECKING:
    from .base import RegionParser


@dataclass(slots=True)
class _CallSent:
    header: bool = False  # the first delta (index, id, name) went out
    args: int = 0  # characters of argument text sent


def partial_marker_len(text: str, markers: Sequence[str]) -> int:
    """Length of the longest tail of `text` that is a proper prefix of some marker."""
    best = 0
    for m in markers:
        for k in range(min(len(m) - 1, len(text)), best, -1):
            if text.endswith(m[:k]):
                best = k
                break
    return best


class RegionStreamParser:
    """StreamParser for any RegionParser. Joined deltas == the one-shot parse's content/reasoning, and
    for every call that parsed to a `call`: its name and its argument text (`call.raw`, "" when None)."""

    def __init__(self, parser: RegionParser, tools: Sequence[ToolSpec] = (), mode: ParseMode = "strict"):
        self._parser, self._tools, self._mode = parser, tuple(tools), mode
        self._buf = ""
        self._settled = (-1, False)  # (length scanned, whether the turn had ended)
        self._sent = {"content": "", "reasoning": ""}  # the text of each kind sent so far
        self._calls: list[_CallSent] = []

    def feed(self, text: str) -> list[Delta]:
        self._buf += text
        settled = len(self._buf) - partial_marker_len(self._buf, self._parser.markers)
        return self._emit(settled, ended=False)

    def flush(self) -> list[Delta]:
        out = self._emit(len(self._buf), ended=True)
        if self._parser.text_when_no_call:  # the content held back, or the whole text when no call was usable
            content, sent = self.finish().message.content or "", self._sent["content"]
            if len(content) > len(sent) and content.startswith(sent):
                out.append(Delta(content=content[len(sent) :]))
                self._sent["content"] = content
        return out

    def finish(self) -> ParsedMessage:
        return self._parser.parse(self._buf, self._tools, mode=self._mode)

    def _emit(self, settled: int, *, ended: bool) -> list[Delta]:
        if (settled, ended) == self._settled:
            return []
        self._settled = (settled, ended)
        src = Source(self._buf[:settled], ended=ended)
        out: list[Delta] = []
        joined = {"content": "", "reasoning": ""}
        index = 0
        held = False  # text_when_no_call: text after a call waits for flush (the content depends on the calls)
        for region in self._parser.scan(src, self._tools):
            if isinstance(region, TextRegion) and held and region.kind == "content":
                continue
            if isinstance(region, TextRegion):
                joined[region.kind] += src.text[region.start : region.end]
                now = joined[region.kind].strip()  # stripping a prefix gives a prefix of the stripped whole
                if len(now) > len(self._sent[region.kind]):
                    out.append(Delta(**{region.kind: now[len(self._sent[region.kind]) :]}))
                    self._sent[region.kind] = now
                continue
            out.extend(self._call_deltas(index, region))
            index += 1
            held = self._parser.text_when_no_call
        return out

    def _call_deltas(self, index: int, call: RawCall) -> list[Delta]:
        while len(self._calls) <= index:
            self._calls.append(_CallSent())
        sent = self._calls[index]
        out: list[Delta] = []
        if not sent.header and call.name:
            out.append(Delta(index=index, id=call.call_id or call_id_for(index), name=call.name))
            sent.header = True
        if sent.header and call.args_text and len(call.args_text) > sent.args:
            out.append(Delta(index=index, arguments=call.args_text[sent.args :]))
            sent.args = len(call.args_text)
        return out
