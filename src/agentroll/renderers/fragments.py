"""Bridge texts by message shape: render a bridge once per shape, then fill in each turn's contents.

A bridge (hf.py) is the template's text for the new messages after a sampled turn. In a template
that writes message contents verbatim, that text is the same for every turn of one *shape* (the
sampled turn's call names and ids, the new messages' roles, names and call ids, the tools) except
where the contents go. So the first bridge of a shape is rendered with placeholders for the
contents, and later ones fill the placeholders in: two template renders a turn become a string join.

Checked when a shape is first seen: rendered twice with different placeholders (whitespace at both
ends, a quote, a backslash, a non-ASCII character, different lengths), the two texts must differ
exactly at the placeholders, each placeholder appearing once; so a template that trims, escapes or
measures a content gets no fragment. A template that branches on what a content *says* cannot be
caught this way, so fragments are opt-in per family (`TemplateConfig.fragment_bridge`), and the
renderer conformance tests compare them with the full bridge on random conversations.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from agentroll.types import Message, ToolCall, ToolSpec

# (sampled turn, new messages, tools, stopped) -> the bridge's text, or None when it cannot bridge
RenderBridge = Callable[[Message, Sequence[Message], Sequence[ToolSpec], bool], "str | None"]

_LIMIT = 1024  # shapes kept; a run has a handful (one per number of calls a turn makes)
_UNSEEN = object()


@dataclass(frozen=True, slots=True)
class Fragment:
    """A bridge text cut at its contents: parts[0] + content[0] + parts[1] + ... + parts[-1]."""

    parts: tuple[str, ...]

    def fill(self, contents: Sequence[str]) -> str:
        out = [self.parts[0]]
        for content, part in zip(contents, self.parts[1:], strict=True):
            out += (content, part)
        return "".join(out)


class FragmentCache:
    """Fragments by shape for one renderer; `text` is None where the full bridge must run."""

    def __init__(self, render_bridge: RenderBridge):
        self._render = render_bridge
        self._by_shape: dict[Hashable, tuple[Sequence[ToolSpec], Fragment | None]] = {}

    def text(self, last: Message, new: Sequence[Message], tools: Sequence[ToolSpec], stopped: bool) -> str | None:
        key = _shape(last, new, tools, stopped)
        if key is None:
            return None
        hit = self._by_shape.get(key, _UNSEEN)
        if hit is _UNSEEN or not _same(hit[0], tools):  # type: ignore[index]
            if len(self._by_shape) >= _LIMIT:
                self._by_shape.clear()
            hit = self._by_shape[key] = (tuple(tools), self._build(last, new, tools, stopped))
        fragment = hit[1]  # type: ignore[index]
        return None if fragment is None else fragment.fill([m.content for m in new if m.content is not None])

    def _build(
        self, last: Message, new: Sequence[Message], tools: Sequence[ToolSpec], stopped: bool
    ) -> Fragment | None:
        sampled = _canonical(last)
        texts, marks = [], []
        for tag in ("a", "bbb"):
            mark = [_placeholder(tag, i) for i in range(len(new))]
            filled = [_with_content(m, s) for m, s in zip(new, mark, strict=True)]
            text = self._render(sampled, filled, tools, stopped)
            if text is None:
                return None
            texts.append(text)
            marks.append([s for m, s in zip(new, mark, strict=True) if m.content is not None])
        parts = _cut(texts[0], marks[0])
        if parts is None or Fragment(parts).fill(marks[1]) != texts[1]:
            return None
        return Fragment(parts)


def _shape(last: Message, new: Sequence[Message], tools: Sequence[ToolSpec], stopped: bool) -> Hashable | None:
    """Everything a bridge's text may depend on except the new contents; None: no fragment for this turn."""
    if last.reasoning is not None or any(m.tool_calls or m.reasoning is not None for m in new):
        return None
    calls = tuple((c.id, c.name) for c in last.tool_calls)
    messages = tuple((m.role, m.name, m.tool_call_id, m.content is None) for m in new)
    return bool(last.content), calls, messages, tuple(map(id, tools)), stopped


def _same(a: Sequence[ToolSpec], b: Sequence[ToolSpec]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))  # ids alone could be reused


def _canonical(last: Message) -> Message:
    """The sampled turn reduced to its shape: what a fragment may depend on."""
    calls = tuple(ToolCall(id=c.id, name=c.name, arguments={}) for c in last.tool_calls)
    return Message(role="assistant", content="x" if last.content else None, tool_calls=calls)


def _with_content(m: Message, content: str) -> Message:
    return m if m.content is None else m.model_copy(update={"content": content})


def _placeholder(tag: str, index: int) -> str:
    # Edges and characters that a trim, a JSON/HTML escape or an ASCII-only filter would change.
    return f' \n\t"\\ «agentroll-{tag}-{index}» é\t\n '


def _cut(text: str, marks: Sequence[str]) -> tuple[str, ...] | None:
    """`text` split at each mark, in order; None unless each appears exactly once."""
    parts, pos = [], 0
    for mark in marks:
        at = text.find(mark, pos)
        if at < 0 or text.count(mark) != 1:
            return None
        parts.append(text[pos:at])
        pos = at + len(mark)
    parts.append(text[pos:])
    return tuple(parts)
