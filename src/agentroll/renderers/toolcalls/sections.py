"""The scan shared by formats that wrap calls in a section (deepseek_v3, kimi_k2).

    content SECTION_BEGIN CALL_BEGIN .. CALL_END (ws) CALL_BEGIN .. CALL_END SECTION_END content

Section markers and whitespace between calls are not content; any other text is.
A call opener outside a section still counts (models drop the section marker).
"""

from __future__ import annotations

from collections.abc import Callable

from .base import RawCall, Region, Source, TextRegion


def scan_sections(
    src: Source, section_begin: str, section_end: str, call_begin: str, read_call: Callable[[Source, int, int], RawCall]
) -> list[Region]:
    """`read_call(src, start, body)` reads one call whose opener is at `start` and body at `body`."""
    text, pos, out = src.text, 0, []
    in_section = False
    empty_section_at: int | None = None  # a section opened and no call yet: the turn may end there
    while True:
        hits = [(at, m) for m in (section_begin, section_end, call_begin) if (at := src.find(m, pos)) >= 0]
        if not hits:
            if empty_section_at is not None and not text[pos:].strip():
                out.append(RawCall(empty_section_at, len(text), closed=False))
            else:
                out.append(TextRegion(pos, len(text)))
            return out
        at, marker = min(hits)
        if not (in_section and not text[pos:at].strip()):  # whitespace between calls is not content
            out.append(TextRegion(pos, at))
        pos = at + len(marker)
        if marker == call_begin:
            call = read_call(src, at, pos)
            out.append(call)
            if not call.closed:
                return out
            pos, in_section, empty_section_at = call.end, True, None
        else:
            in_section = marker == section_begin
            empty_section_at = at if in_section else None
