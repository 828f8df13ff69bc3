"""`deepseek_v3`: DeepSeek V3 / R1 tool calls (and the V3.1 form without a code fence).

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
    ```json
    {"a": 1}
    ```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>...<｜tool▁calls▁end｜>

V3.1 writes `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{"a": 1}<｜tool▁call▁end｜>`.
Section markers and whitespace between calls are not content; other text is.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentroll.types import ToolSpec

from .base import RawCall, Region, RegionParser, Source
from .sections import scan_sections

CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
FENCE_END = "\n```"


class DeepSeekV3Parser(RegionParser):
    name = "deepseek_v3"
    markers = (CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, SEP)

    def scan(self, src: Source, tools: Sequence[ToolSpec]) -> list[Region]:
        return scan_sections(src, CALLS_BEGIN, CALLS_END, CALL_BEGIN, _call)


def _call(src: Source, start: int, body: int) -> RawCall:
    text = src.text
    close = src.find(CALL_END, body)
    closed = close >= 0
    body_end = close if closed else len(text)
    end = close + len(CALL_END) if closed else len(text)
    call = RawCall(start, end, closed)
    sep = src.find(SEP, body, body_end)
    if sep < 0:
        if closed:
            call.error = f"no {SEP} between the call's type and name"
        return call
    head, rest = text[body:sep].strip(), sep + len(SEP)
    if head != "function":  # V3.1: NAME<sep>ARGS
        call.name = head or None
        call.args_text = text[rest:body_end]
        return call
    newline = text.find("\n", rest, body_end)
    if newline < 0:  # the name is complete only at its newline (or at the call's end)
        if closed:
            call.name = text[rest:body_end].strip() or None
        return call
    call.name = text[rest:newline].strip() or None
    args = newline + 1
    for fence in ("```json\n", "```\n"):
        if text.startswith(fence, args):
            args += len(fence)
            break
    if text.startswith("```", args) or (not closed and "```json\n".startswith(text[args:body_end])):
        return call  # the fence itself is still arriving
    fence_end = text.find(FENCE_END, args, body_end)
    if fence_end >= 0:
        call.args_text = text[args:fence_end]
    elif closed:
        call.args_text = text[args:body_end].rstrip()
    else:
        call.args_text = text[args : body_end - _partial_suffix(text[args:body_end], FENCE_END)]
    return call


def _partial_suffix(text: str, marker: str) -> int:
    return next((k for k in range(min(len(marker), len(text)), 0, -1) if text.endswith(marker[:k])), 0)
