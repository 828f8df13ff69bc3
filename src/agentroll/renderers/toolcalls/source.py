"""The text a format scans, and where its real markers are (plain text, or decoded token IDs)."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class Source:
    """The text a format scans, and where its real markers are.

    From plain text every occurrence of a marker is real. From token IDs only
    a marker's special-token ID is (the same characters spelled with ordinary
    tokens are content); `span` maps character offsets back to token indices.
    `ended` is False while streaming: more text may follow, so a format must
    not decide what only the end of the turn can tell.
    """

    def __init__(self, text: str, *, ended: bool = True):
        self.text = text
        self.ended = ended

    def find(self, marker: str, start: int = 0, end: int | None = None) -> int:
        """Offset of the next real `marker` in [start, end), or -1."""
        return self.text.find(marker, start, len(self.text) if end is None else end)

    def at(self, marker: str, pos: int) -> bool:
        """Is there a real `marker` starting exactly at `pos`?"""
        return self.find(marker, pos, pos + len(marker)) == pos

    def span(self, start: int, end: int) -> tuple[int, int]:
        """[start, end) in characters -> the unit this source reports spans in."""
        return start, end


class TokenSource(Source):
    """A Source decoded from token IDs; markers with a special ID count only as that ID."""

    def __init__(self, token_ids: Sequence[int], tokenizer: Any, special_ids: Mapping[str, int]):
        by_id = {i: m for m, i in special_ids.items()}
        self._tok = tokenizer
        self._ids = list(token_ids)
        self._special = set(special_ids)
        self._runs: list[tuple[int, int, int]] = []  # (char_start, token_start, token_end) of ordinary runs
        self._hits: dict[str, list[int]] = {m: [] for m in special_ids}
        self._tok_at: list[tuple[int, int]] = []  # (char_start, token_index) of every run/special token
        self._offsets: dict[int, list[int] | None] = {}  # run start -> per-token char offsets (see _run_offsets)
        self._run_text: dict[int, str] = {}  # run start -> its decoded text
        parts: list[str] = []
        pos, i, n = 0, 0, len(self._ids)
        # Markers' positions in one pass; the ordinary runs between them are decoded whole.
        marks = [k for k, t in enumerate(self._ids) if t in by_id] if by_id else []
        for j in [*marks, n]:
            if j > i:
                piece = tokenizer.decode(self._ids[i:j])
                self._runs.append((pos, i, j))
                self._run_text[i] = piece
                self._tok_at.append((pos, i))
                parts.append(piece)
                pos += len(piece)
            if j < n:
                marker = by_id[self._ids[j]]
                self._hits[marker].append(pos)
                self._tok_at.append((pos, j))
                parts.append(marker)
                pos += len(marker)
            i = j + 1
        self._tok_at.append((pos, n))
        super().__init__("".join(parts))

    def find(self, marker: str, start: int = 0, end: int | None = None) -> int:
        if marker not in self._special:  # not a single token in this vocabulary: its text is all there is
            return super().find(marker, start, end)
        end = len(self.text) if end is None else end
        hits = self._hits[marker]
        k = bisect.bisect_left(hits, start)
        return hits[k] if k < len(hits) and hits[k] + len(marker) <= end else -1

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Every token that overlaps [start, end): exact at special tokens; a call that starts inside
        an ordinary token (e.g. " {" in llama3_json) takes that whole token."""
        return self._token_index(start, round_up=False), self._token_index(end, round_up=True)

    def _token_index(self, char: int, *, round_up: bool) -> int:
        k = bisect.bisect_right(self._tok_at, (char, len(self._ids) + 1)) - 1
        base_char, base_tok = self._tok_at[max(k, 0)]
        if char == base_char:
            return base_tok
        run = next(((c, s, e) for c, s, e in self._runs if s == base_tok), None)
        if run is None:  # inside a special token: snap to its edge
            return base_tok + 1 if round_up else base_tok
        # Inside an ordinary run: binary-search the shortest decoded prefix reaching `char`.
        # Decoded prefix lengths grow with the token count (a split multi-byte character may
        # count as one replacement char), so the answer is exact at character boundaries.
        c0, s, e = run
        offsets = self._run_offsets(s, e)
        if offsets is not None:  # exact per-token offsets of this run: no search needed
            lo = s + bisect.bisect_left(offsets, char - c0)
            return lo if round_up or offsets[lo - s] == char - c0 else lo - 1
        lo, hi = s, e
        while lo < hi:
            mid = (lo + hi) // 2
            if c0 + len(self._tok.decode(self._ids[s:mid])) >= char:
                hi = mid
            else:
                lo = mid + 1
        if round_up or c0 + len(self._tok.decode(self._ids[s:lo])) == char:
            return lo
        return lo - 1

    def _run_offsets(self, s: int, e: int) -> list[int] | None:
        """Decoded length of ids[s:s+k] for k = 0..e-s, when tokens decode one by one to the run's text.

        Not so when a token holds part of a multi-byte character or the decoder joins tokens (SentencePiece
        spaces): then None, and the caller searches decoded prefixes instead."""
        if s in self._offsets:
            return self._offsets[s]
        each = getattr(self._tok, "decode_each", None)
        pieces = each(self._ids[s:e]) if each is not None else None
        offsets = None
        if pieces is not None and "".join(pieces) == self._run_text[s]:
            offsets = [0, *itertools.accumulate(map(len, pieces))]
        self._offsets[s] = offsets
        return offsets


def discover_special_ids(tokenizer: Any, markers: Iterable[str]) -> dict[str, int]:
    """Markers that `tokenizer` encodes as one ID (and decodes back verbatim): its special tokens."""
    found: dict[str, int] = {}
    for m in markers:
        ids = list(tokenizer.encode(m))
        if len(ids) == 1 and tokenizer.decode(ids) == m:
            found[m] = ids[0]
    return found
