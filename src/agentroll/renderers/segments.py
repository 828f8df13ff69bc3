"""Encode and decode piece by piece with cached pieces: the tokenizer's own IDs and text, less work.

A Hugging Face fast tokenizer cuts its added tokens (`<|im_start|>`, ...) out of the text first and
runs normalizer, pre-tokenizer and model on each piece in between on its own. So when nothing in
those stages depends on where a piece sits in the whole text, encoding the pieces separately and
joining the IDs gives exactly `encode(text)`. Every rendered prompt repeats the same pieces (the
system prompt with its tool schemas, "assistant\\n", ...), so a cache of piece -> IDs skips most of
a tokenizer's work: the SmolLM2 tokenizer spends ~0.4 ms on a 1,300-character tool prompt.

`SegmentEncoder.for_backend` returns None for a tokenizer where that equivalence is not certain:
added tokens that strip neighbouring spaces or match only whole words, a normalizer or pre-tokenizer
that looks at a piece's position (SentencePiece's Metaspace prepends "▁" to the first piece only)
or that this module does not know. Tests compare both encodings on every registered renderer.

Decoding is the mirror image: a byte-level decoder turns each token into its bytes and the joined
bytes into text, so where every token's bytes are whole UTF-8 characters, the text is the join of
the tokens decoded one by one (`decodes_by_joining`); a token holding part of a character decodes to
U+FFFD alone, and then the caller decodes the whole sequence.
"""

from __future__ import annotations

import re
from typing import Any

# Stages that treat every piece alike wherever it sits in the text.
_SAFE_NORMALIZERS = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Sequence"}
_SAFE_PRE_TOKENIZERS = {"ByteLevel", "Split", "Digits", "Punctuation", "Whitespace", "WhitespaceSplit", "Sequence"}
_CACHE_LIMIT = 8192  # distinct pieces kept; the cache starts over when full (prompts repeat within a run)


class SegmentEncoder:
    """`encode(text)` == `backend.encode(text, add_special_tokens=False).ids`, piece by cached piece."""

    def __init__(self, backend: Any, split_tokens: dict[str, int]):
        self._backend = backend
        self._ids = split_tokens
        # Longest first: at each position the regex takes the longest token, as the tokenizer's
        # leftmost-longest matcher does.
        alternatives = sorted(split_tokens, key=len, reverse=True)
        self._split = re.compile("(" + "|".join(map(re.escape, alternatives)) + ")").split
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def for_backend(cls, backend: Any, spec: dict[str, Any]) -> SegmentEncoder | None:
        """An encoder for a `tokenizers.Tokenizer` (`spec`: its parsed JSON), or None when piecewise
        encoding might differ."""
        if not (_stages_safe(spec.get("normalizer"), _SAFE_NORMALIZERS, "normalizers")
                and _stages_safe(spec.get("pre_tokenizer"), _SAFE_PRE_TOKENIZERS, "pretokenizers")):  # fmt: skip
            return None
        added = spec.get("added_tokens") or []
        if any(t["lstrip"] or t["rstrip"] or t["single_word"] for t in added):
            return None
        # Tokens matched on normalized text are found by the tokenizer inside each piece; cutting at the
        # raw-text ones alone gives the same pieces (a piece between two matches holds no other match).
        split_tokens = {t["content"]: t["id"] for t in added if not t["normalized"]}
        return cls(backend, split_tokens) if split_tokens else None

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        cache, token_ids = self._cache, self._ids
        for i, piece in enumerate(self._split(text)):
            if i % 2:  # odd positions are the added tokens the split captured
                ids.append(token_ids[piece])
            elif piece:
                hit = cache.get(piece)
                if hit is None:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    hit = cache[piece] = self._backend.encode(piece, add_special_tokens=False).ids
                ids.extend(hit)
        return ids


def _stages_safe(stage: dict[str, Any] | None, safe: set[str], children: str) -> bool:
    """Is this normalizer / pre-tokenizer (and each stage of a Sequence) position-independent?"""
    if stage is None:
        return True
    if stage.get("type") not in safe:
        return False
    if stage["type"] == "ByteLevel" and stage.get("add_prefix_space"):
        return False  # would add a space to each piece; keep to the common configuration
    return all(_stages_safe(s, safe, children) for s in stage.get(children) or [])


def decodes_by_joining(spec: dict[str, Any]) -> bool:
    """Given a tokenizer's parsed JSON: is `decode(ids)` the join of each token decoded alone, whenever
    no piece holds U+FFFD?"""
    return (spec.get("decoder") or {}).get("type") == "ByteLevel"
