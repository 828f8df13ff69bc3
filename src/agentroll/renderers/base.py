"""The renderer protocol: messages <-> token IDs for one model family.

A renderer turns the first prompt into IDs once, parses the model's sampled IDs
into an assistant message (never re-encoding them), and renders a *bridge*:
only the tokens that follow a sampled turn (the end of the assistant turn the
engine did not emit, tool/user turns, the next assistant opener).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from agentroll.types import Message, ParsedMessage, ParseMode, ToolSpec


@runtime_checkable
class Tokenizer(Protocol):
    """The slice of a tokenizer that renderers and the loop need."""

    def encode(self, text: str) -> list[int]:
        """Text to IDs; special-token strings in `text` map to their special IDs; no BOS added."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """IDs to text, special tokens included verbatim."""
        ...


@dataclass(slots=True, frozen=True)
class Bridge:
    """Tokens to append after a sampled turn.

    When the conversation cannot be extended token-exactly, `new_segment` is
    True, `token_ids` is a complete fresh prompt and `reason` says why.
    """

    token_ids: list[int]
    new_segment: bool = False
    reason: str | None = None


@runtime_checkable
class Renderer(Protocol):
    """Render, parse and bridge for one model family. Token IDs are the source of truth."""

    name: str
    tokenizer: Tokenizer

    def render(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (), *, add_generation_prompt: bool = True
    ) -> list[int]:
        """The whole conversation as prompt IDs (ending with the assistant opener when asked)."""
        ...

    def parse(
        self, token_ids: Sequence[int], tools: Sequence[ToolSpec] = (), *, mode: ParseMode = "strict"
    ) -> ParsedMessage:
        """Sampled IDs of one assistant turn -> message + every tool call with its parse status."""
        ...

    def bridge(
        self,
        history: Sequence[Message],
        new_messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        *,
        stopped: bool = True,
    ) -> Bridge:
        """IDs to append after the last (sampled, assistant) message of `history`.

        `stopped` is False when the sampled turn did not end with a stop token,
        so the bridge must close the turn itself.
        """
        ...

    def stop_token_ids(self) -> list[int]:
        """IDs that end an assistant turn; engines must stop on them."""
        ...


@dataclass(slots=True, frozen=True)
class Drift:
    """Where an episode's tokens left the canonical render of its messages."""

    token_index: int
    expected: list[int]
    actual: list[int]
    context: str  # a short human-readable diff around the break


@runtime_checkable
class PrefixChecker(Protocol):
    """Optional capability: check an episode's tokens against the canonical render."""

    def check_prefix(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], token_ids: Sequence[int], loss_mask: Sequence[int]
    ) -> Drift | None:
        """None when the canonical render of `messages` extends `token_ids` (sampled spans compared verbatim)."""
        ...
