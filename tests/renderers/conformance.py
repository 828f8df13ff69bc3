"""One conformance suite for every renderer: the case format and the seeded conversation generator.

A family contributes `CASES: list[RendererCase]` in tests/renderers/cases_<family>.py;
test_conformance.py runs every property below over every case.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from agentroll.types import Message, ToolCall, ToolSpec

N_CONVERSATIONS = 200


def _call_id(rng: random.Random) -> str:
    return "call_" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=8))


@dataclass(frozen=True)
class ConversationStyle:
    """What random conversations a family's format accepts."""

    system: bool = True  # may start with a system message
    reasoning: bool = False  # assistant messages may carry reasoning
    parallel_calls: bool = True  # several tool calls in one assistant turn
    content_with_calls: bool = True  # an assistant turn may have content and calls together
    make_call_id: Callable[[random.Random], str] = _call_id


@dataclass(frozen=True)
class RendererCase:
    id: str
    make: Callable[[], object]  # the renderer under test
    # (messages, tools, add_generation_prompt) -> token IDs from an independent reference implementation
    reference: Callable[[list[Message], list[ToolSpec], bool], list[int]]
    style: ConversationStyle = field(default_factory=ConversationStyle)
    prefix_stable: bool = True  # False: some histories re-render differently; the bridge must say so


TOOLS = [
    ToolSpec(
        name="calculator",
        description="Evaluate an arithmetic expression.",
        input_schema={
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "e.g. 2 * (3 + 4)"}},
            "required": ["expression"],
        },
    ),
    ToolSpec(
        name="search",
        description="Search the corpus; returns passages.",
        input_schema={
            "type": "object",
            "$defs": {"filter": {"type": "object", "properties": {"field": {"type": "string"}, "value": {}}}},
            "properties": {
                "query": {"type": "string"},
                "k": {"type": "integer", "minimum": 1, "maximum": 20},
                "filters": {"type": "array", "items": {"$ref": "#/$defs/filter"}},
                "mode": {"type": "string", "enum": ["bm25", "dense"]},
            },
            "required": ["query"],
        },
    ),
    ToolSpec(name="get_time", description="The current time, no arguments."),
]

WORDS = [
    "hello", "world", "the", "answer", "is", "42", "Ünïcödé", "日本語", "emoji 🎉", "tab\there", "a  b",
    "new\nline", '"quoted"', "back\\slash", "{json: 1}", "<b>tag</b>", "x = [1, 2]", "ok.", "don't", "3.14159",
    "   indented", "—", "naïve café", "İstanbul", "ǅ", "x\u200by",
]  # fmt: skip


def _text(rng: random.Random, lo: int = 1, hi: int = 12) -> str:
    words = rng.choices(WORDS, k=rng.randint(lo, hi))
    text = " ".join(words).strip() or "ok"
    # Text opening with a JSON object is a tool call in JSON-only formats (llama3_json): not plain content.
    return "so " + text if text.startswith("{") else text


def _arguments(rng: random.Random, tool: ToolSpec) -> dict:
    if tool.name == "calculator":
        return {"expression": f"{rng.randint(0, 999)} {rng.choice('+-*/')} {rng.randint(1, 99)}"}
    if tool.name == "search":
        args: dict = {"query": _text(rng, 1, 5)}
        if rng.random() < 0.5:
            args["k"] = rng.randint(1, 20)
        if rng.random() < 0.3:
            args["filters"] = [{"field": "year", "value": rng.randint(1990, 2024)}, {"field": "lang", "value": "fr"}]
        if rng.random() < 0.3:
            args["mode"] = rng.choice(["bm25", "dense"])
        return args
    return {}


def random_conversation(rng: random.Random, style: ConversationStyle, max_rounds: int = 4) -> list[Message]:
    """[system] user, then rounds of assistant(calls) -> tool results, or assistant(content) -> user.

    Ends with a user or tool message, ready for a generation prompt.
    """
    messages: list[Message] = []
    if style.system and rng.random() < 0.5:
        messages.append(Message(role="system", content=_text(rng, 3, 15)))
    messages.append(Message(role="user", content=_text(rng)))
    for _ in range(rng.randint(1, max_rounds)):
        reasoning = _text(rng, 2, 10) if style.reasoning and rng.random() < 0.7 else None
        if rng.random() < 0.65:
            n_calls = rng.randint(1, 3) if style.parallel_calls else 1
            calls = tuple(
                ToolCall(id=style.make_call_id(rng), name=t.name, arguments=_arguments(rng, t))
                for t in rng.choices(TOOLS, k=n_calls)
            )
            content = _text(rng) if style.content_with_calls and rng.random() < 0.3 else None
            messages.append(Message(role="assistant", content=content, reasoning=reasoning, tool_calls=calls))
            for c in calls:
                messages.append(Message(role="tool", content=_text(rng, 1, 20), tool_call_id=c.id, name=c.name))
        else:
            messages.append(Message(role="assistant", content=_text(rng), reasoning=reasoning))
            messages.append(Message(role="user", content=_text(rng)))
    return messages


def conversations(style: ConversationStyle, n: int = N_CONVERSATIONS, seed: int = 0) -> list[list[Message]]:
    rng = random.Random(seed)
    return [random_conversation(rng, style) for _ in range(n)]
