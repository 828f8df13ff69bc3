"""gpt-oss harmony turns (vLLM `--tool-call-parser openai`).

A sampled turn is a run of harmony messages after the prompt's `<|start|>assistant`:

    <|channel|>analysis<|message|>...<|end|>
    <|start|>assistant to=functions.NAME<|channel|>commentary <|constrain|>json<|message|>{...}<|call|>
    <|start|>assistant<|channel|>final<|message|>...<|return|>

analysis -> reasoning; final (and commentary without a recipient, a preamble) ->
content; a message with a recipient -> a tool call named after it (`functions.`
stripped), closed by `<|call|>`. The recipient may sit before or after the
channel (`<|channel|>commentary to=functions.NAME` is what gpt-oss often emits).
Harmony carries no call ids: calls are `call_<index>`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agentroll.types import ToolSpec

from .base import RawCall, Region, RegionParser, Source, TextRegion

START, CHANNEL, MESSAGE, CONSTRAIN = "<|start|>", "<|channel|>", "<|message|>", "<|constrain|>"
END, CALL, RETURN = "<|end|>", "<|call|>", "<|return|>"
MARKERS = (START, CHANNEL, MESSAGE, CONSTRAIN, END, CALL, RETURN)
_RECIPIENT = re.compile(r"\bto=([^\s<]+)")


class OpenAIParser(RegionParser):
    name = "openai"
    markers = MARKERS

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        text, n = src.text, len(src.text)
        regions: list[Region] = []
        pos = 0
        while pos < n:
            head = pos + len(START) if src.at(START, pos) else pos
            body_mark = src.find(MESSAGE, head)
            stop, stop_len = _next_stop(src, head)
            if body_mark < 0 or 0 <= stop < body_mark:
                if stop < 0:
                    break  # a header still being written: nothing about it is certain yet
                if stop > head:  # text outside any message: keep it as content rather than lose it
                    regions.append(TextRegion(head, stop))
                pos = stop + stop_len
                continue
            channel, recipient = _header(text[head:body_mark])
            body = body_mark + len(MESSAGE)
            stop, stop_len = _next_stop(src, body)
            body_end = n if stop < 0 else stop
            if recipient is not None:
                name = recipient.removeprefix("functions.")
                closed = stop >= 0
                regions.append(RawCall(pos, body_end + stop_len if closed else n, closed, name, text[body:body_end]))
            else:
                regions.append(TextRegion(body, body_end, "reasoning" if channel == "analysis" else "content"))
            pos = n if stop < 0 else stop + stop_len
        return regions


def _next_stop(src: Source, start: int) -> tuple[int, int]:
    """The earliest message terminator at or after `start`: (offset, length), (-1, 0) when none."""
    hits = [(at, len(m)) for m in (END, CALL, RETURN) if (at := src.find(m, start)) >= 0]
    return min(hits) if hits else (-1, 0)


def _header(header: str) -> tuple[str | None, str | None]:
    """(channel, recipient) from a header such as `assistant to=functions.f<|channel|>commentary <|constrain|>json`."""
    channel = None
    if CHANNEL in header:
        after = header.split(CHANNEL, 1)[1]
        channel = re.split(r"[\s<]", after, maxsplit=1)[0] or None
    match = _RECIPIENT.search(header)
    recipient = match.group(1) if match else None
    return channel, None if recipient in (None, "all") else recipient
