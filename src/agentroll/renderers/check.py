"""The runtime prefix check: do an episode's tokens match the canonical render of its messages?

A segment's tokens are pieces: rendered by us (mask 0: the first prompt,
bridges) and sampled by the model (mask 1). The canonical text renders the
segment's messages with each sampled assistant turn replaced by its sampled
text verbatim (so the model's own formatting is never held against it). Then:

1. text: every piece's text appears at its place in the canonical text;
2. tokens: every rendered piece is exactly the canonical encoding of its text;
3. boundaries: encoding the canonical text piece by piece gives the same IDs
   as encoding it whole (no BPE merge across a piece boundary).

A mask value of 2 marks tokens we rendered inside an assistant turn (a forced tool-call opener): they
belong to the turn's text, so they are checked with the sampled tokens that follow them.

A failure of (1) on a sampled piece means the template would re-render the
model's turn differently (it strips reasoning, trims whitespace): a *history*
drift. Any other failure is a *bridge* drift: tokens we rendered that a
canonical render would not produce. The last sampled piece of a segment is not
compared: nothing was rendered after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentroll.renderers.base import Drift
from agentroll.types import Message, ToolSpec


def pieces(loss_mask: Sequence[int]) -> list[tuple[int, int, int]]:
    """Runs of equal mask: (mask, start, end); a forced opener (2) joins the sampled run after it."""
    mask = loss_mask if isinstance(loss_mask, list) else list(loss_mask)
    n, start, runs = len(mask), 0, []
    # Runs are hundreds of tokens long: find each run's end with list.index (a C scan), not a Python loop.
    while start < n:
        kind = 1 if mask[start] == 2 else mask[start]
        others = (0,) if kind == 1 else tuple(v for v in (0, 1, 2) if v != kind)
        end = min((_index(mask, v, start, n) for v in others), default=n)
        runs.append((kind, start, end))
        start = end
    return runs


def _index(values: list[int], value: int, start: int, n: int) -> int:
    try:
        return values.index(value, start)
    except ValueError:
        return n


def check_segment(
    renderer: Any, messages: Sequence[Message], tools: Sequence[ToolSpec], token_ids: Sequence[int], mask: Sequence[int]
) -> Drift | None:
    """None when `token_ids` is token-exact against the canonical render of `messages` (see module doc)."""
    all_runs = pieces(mask)
    # The last sampled piece has nothing rendered after it: it is not compared.
    runs = all_runs[:-1] if len(all_runs) > 1 and all_runs[-1][0] == 1 else all_runs
    tok = renderer.tokenizer
    verbatim = _verbatim(renderer, messages, token_ids, all_runs)
    ends_open = messages[-1].role != "assistant"
    canonical = renderer.render_text(verbatim, tools, add_generation_prompt=ends_open)

    cursor, spans = 0, []
    for kind, start, end in runs:
        ids = list(token_ids[start:end])
        text = tok.decode(ids)
        if canonical[cursor : cursor + len(text)] != text:
            where = "history" if kind == 1 else "bridge"
            return _drift(tok, token_ids, start, canonical, cursor, text, f"{where}: text differs from the template")
        if kind == 0 and tok.encode(text) != ids:
            expected = tok.encode(text)
            return Drift(start, expected, ids, f"bridge: {text[:60]!r} is not canonically tokenized")
        spans.append((cursor, cursor + len(text)))
        cursor += len(text)

    whole = tok.encode(canonical[:cursor])
    piecewise = [t for ids in _piece_ids(tok, canonical, spans, runs, token_ids) for t in ids]
    if whole != piecewise:
        i = next(k for k, (x, y) in enumerate(zip(whole, piecewise, strict=False)) if x != y) if whole else 0
        return Drift(i, whole[i : i + 4], piecewise[i : i + 4], "bridge: a token merges across a turn boundary")
    return None


def _piece_ids(
    tok: Any, canonical: str, spans: list[tuple[int, int]], runs: list[tuple[int, int, int]], token_ids: Sequence[int]
) -> list[list[int]]:
    """Each piece's canonical encoding. A rendered piece was just checked to be exactly the encoding of its
    text, so its own IDs are reused; sampled pieces are encoded (in one call where the tokenizer can)."""
    sampled = [canonical[a:b] for (a, b), (kind, _, _) in zip(spans, runs, strict=True) if kind != 0]
    encode_many = getattr(tok, "encode_many", None)
    encoded = iter(encode_many(sampled) if encode_many else [tok.encode(text) for text in sampled])
    return [list(token_ids[s:e]) if kind == 0 else next(encoded) for kind, s, e in runs]


def _verbatim(
    renderer: Any, messages: Sequence[Message], token_ids: Sequence[int], runs: list[tuple[int, int, int]]
) -> list[Message]:
    """The messages with each assistant turn sampled in this segment replaced by its sampled text."""
    sampled = [(s, e) for kind, s, e in runs if kind == 1]
    stop_ids = set(renderer.stop_token_ids())
    out = list(messages)
    assistant_at = [i for i, m in enumerate(messages) if m.role == "assistant"][-len(sampled) :] if sampled else []
    for i, (s, e) in zip(assistant_at, sampled, strict=True):
        ids = list(token_ids[s:e])
        if ids and ids[-1] in stop_ids:
            ids = ids[:-1]
        out[i] = Message(role="assistant", content=renderer.tokenizer.decode(ids))
    return out


def _drift(tok: Any, token_ids: Sequence[int], start: int, canonical: str, cursor: int, text: str, why: str) -> Drift:
    expected = tok.encode(canonical[cursor : cursor + len(text)])
    actual = list(token_ids[start : start + len(expected) or start + 1])
    context = f"{why}\n  template: {canonical[cursor : cursor + 80]!r}\n  episode:  {text[:80]!r}"
    return Drift(start, expected, actual, context)
