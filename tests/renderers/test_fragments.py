"""Bridges filled in per message shape (fragments.py) are the full bridge's tokens, and templates that
trim or escape contents get no fragment.

The conformance suite already builds every episode from bridges and compares it with the reference
render; there every call id is random, so each shape is new. Here ids repeat (call_0, call_1, ... as
the loop numbers them), so most bridges are filled from a cached fragment.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from agentroll.renderers import available, get_renderer
from agentroll.renderers.hf import TemplateRenderer
from agentroll.renderers.templates import load_template
from agentroll.types import Message, ToolCall
from tests.renderers.conformance import TOOLS, ConversationStyle, random_conversation

AWKWARD = [
    "", " ", "\n", "  padded  ", '{"a": "b\\"c"}', "</tool_response>", "<|im_end|> as text", "naïve 🙂", "a\n\nb",
]  # fmt: skip


def _fragment_renderers() -> list[str]:
    return [n for n in available() if getattr(getattr(get_renderer(n), "config", None), "fragment_bridge", False)]


def _copy(r: TemplateRenderer, *, fragments: bool) -> TemplateRenderer:
    """A new renderer like `r` (its own, empty fragment cache), with or without fragments."""
    config = dataclasses.replace(r.config, fragment_bridge=fragments)
    return TemplateRenderer(r.name, r.tokenizer.hf, r.chat_template, config)


def _without_fragments(r: TemplateRenderer) -> TemplateRenderer:
    return _copy(r, fragments=False)


def _numbered_ids(conv: list[Message]) -> list[Message]:
    """The conversation with call ids call_0, call_1, ... per turn, as agentroll's parsers assign them."""
    out, ids = [], {}
    for m in conv:
        if m.tool_calls:
            calls = tuple(c.model_copy(update={"id": f"call_{i}"}) for i, c in enumerate(m.tool_calls))
            ids = {c.id: new.id for c, new in zip(m.tool_calls, calls, strict=True)}
            m = m.model_copy(update={"tool_calls": calls})
        elif m.role == "tool":
            m = m.model_copy(update={"tool_call_id": ids[m.tool_call_id]})
        out.append(m)
    return out


def _bridges(conv: list[Message]):
    """(history, new messages) at every assistant turn followed by tool results or a user message."""
    for i, m in enumerate(conv):
        if m.role == "assistant":
            j = i + 1
            while j < len(conv) and conv[j].role != "assistant":
                j += 1
            if j > i + 1:
                yield conv[: i + 1], conv[i + 1 : j]


def test_chatml_families_fill_bridges_from_fragments():
    assert {"smollm2", "qwen2.5"} <= set(_fragment_renderers())


@pytest.mark.parametrize("name", _fragment_renderers())
def test_filled_fragments_equal_the_full_bridge(name):
    fast = _copy(get_renderer(name), fragments=True)
    full = _without_fragments(fast)
    rng = random.Random(7)
    style = ConversationStyle()
    checked = 0
    for _ in range(150):
        conv = _numbered_ids(random_conversation(rng, style))
        for history, new in _bridges(conv):
            if rng.random() < 0.3:  # contents a trim, an escape or a marker search would change
                new = [m.model_copy(update={"content": rng.choice(AWKWARD)}) for m in new]
            for stopped in (True, False):
                got = fast.bridge(history, new, TOOLS, stopped=stopped)
                want = full.bridge(history, new, TOOLS, stopped=stopped)
                assert (got.token_ids, got.new_segment) == (want.token_ids, want.new_segment), (history[-1], new)
                checked += 1
    assert checked > 400
    assert len(fast._fragments._by_shape) < checked / 4  # shapes repeat: most bridges were filled in


def _turn() -> tuple[list[Message], list[Message]]:
    call = ToolCall(id="call_0", name="calculator", arguments={"expression": "1 + 1"})
    history = [Message(role="user", content="hi"), Message(role="assistant", tool_calls=(call,))]
    return history, [Message(role="tool", content=" 2\n", tool_call_id="call_0", name="calculator")]


def _smollm2_with(template: str) -> TemplateRenderer:
    base = get_renderer("smollm2")
    return TemplateRenderer("test", base.tokenizer.hf, template, base.config)


def test_a_template_that_trims_tool_results_gets_the_full_bridge():
    template = load_template("chatml-tools").replace(
        "'\\n<tool_response>\\n' + message.content", "'\\n<tool_response>\\n' + message.content | trim"
    )
    assert template != load_template("chatml-tools")
    trimming = _smollm2_with(template)
    history, new = _turn()
    assert trimming._fragments.text(history[-1], new, TOOLS, True) is None
    bridge = trimming.bridge(history, new, TOOLS)
    assert trimming.tokenizer.decode(bridge.token_ids).startswith("\n<|im_start|>user\n<tool_response>\n2\n")


def test_a_template_that_escapes_tool_results_gets_the_full_bridge():
    # Llama 3.1 writes a tool result with tojson (a string is iterable in Jinja): quotes and escapes.
    llama = get_renderer("llama3.1")
    escaping = _copy(llama, fragments=True)
    history, new = _turn()
    assert escaping._fragments.text(history[-1], new, TOOLS, True) is None
    assert escaping.bridge(history, new, TOOLS) == _without_fragments(escaping).bridge(history, new, TOOLS)
