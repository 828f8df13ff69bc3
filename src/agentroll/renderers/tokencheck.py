"""The runtime prefix check for renderers that build token IDs natively (Mistral, harmony).

Such a renderer can render the canonical conversation straight to IDs, with each
assistant turn sampled in the segment spliced in verbatim; the segment must then
be a prefix of that render. Where a format's history policy re-renders a sampled
turn (harmony drops analysis, swaps `<|return|>` for `<|end|>`), the renderer
splices in its canonical form instead, so the difference shows up as drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentroll.renderers.base import Drift
from agentroll.renderers.check import pieces
from agentroll.types import Message


def sampled_turns(
    messages: Sequence[Message], token_ids: Sequence[int], loss_mask: Sequence[int]
) -> dict[int, list[int]]:
    """Message index -> sampled IDs, pairing the segment's mask-1 runs with its last assistant messages."""
    runs = [(s, e) for kind, s, e in pieces(loss_mask) if kind == 1]
    if not runs:
        return {}
    assistants = [i for i, m in enumerate(messages) if m.role == "assistant"][-len(runs) :]
    return {i: list(token_ids[s:e]) for i, (s, e) in zip(assistants, runs, strict=True)}


def first_drift(tokenizer: Any, canonical: Sequence[int], token_ids: Sequence[int]) -> Drift | None:
    """None when `token_ids` is a prefix of `canonical`; else where and how they part."""
    n = len(token_ids)
    if list(canonical[:n]) == list(token_ids):
        return None
    i = next((k for k, (a, b) in enumerate(zip(canonical, token_ids, strict=False)) if a != b), min(n, len(canonical)))
    context = (
        f"tokens differ from the canonical render at {i}\n"
        f"  canonical: {tokenizer.decode(list(canonical[i : i + 12]))!r}\n"
        f"  episode:   {tokenizer.decode(list(token_ids[i : i + 12]))!r}"
    )
    return Drift(i, list(canonical[i : i + 4]), list(token_ids[i : i + 4]), context)
