"""The text of a growing token sequence, decoded a few tokens at a time (for streaming).

Decoding the whole sequence again for every new token costs O(n²) over a response: a streamed
4,000-token answer decodes ~8 million tokens. `IncrementalDecoder` keeps two offsets into the tokens,
as vLLM's and Hugging Face's stream detokenizers do: `read` (tokens whose text is out) and `prefix`
(where the window before them starts). Each step decodes the window with and without the new tokens
and emits the difference. Starting the window a step back, not at `read`, gives the decoder the
context that can change a token's text (a SentencePiece word-start space, a byte-level character
split across tokens). A window whose text ends in U+FFFD is a character still missing bytes: nothing
is emitted until they arrive, or until the caller says the sequence is final.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


class IncrementalDecoder:
    """Feed tokens with `extend`; it returns the text they add. `text` is everything emitted so far."""

    def __init__(self, decode: Callable[[Sequence[int]], str]):
        self._decode = decode
        self.ids: list[int] = []
        self.text = ""
        self._prefix = 0
        self._read = 0

    def extend(self, ids: Sequence[int], *, final: bool = False) -> str:
        """Append `ids`; the text now complete (with `final`, an unfinished character's U+FFFD too)."""
        self.ids.extend(ids)
        if self._read == len(self.ids):
            return ""
        window = self._decode(self.ids[self._prefix :])
        if window.endswith("\ufffd") and not final:
            return ""
        before = self._decode(self.ids[self._prefix : self._read]) if self._read > self._prefix else ""
        new = window[len(before) :]
        self._prefix, self._read = self._read, len(self.ids)
        self.text += new
        return new

    @property
    def pending(self) -> bool:
        """Tokens are held back: their text ends in a character still missing bytes."""
        return self._read < len(self.ids)

    def sync(self, ids: Sequence[int], *, final: bool = False) -> str:
        """Catch up with a cumulative snapshot `ids` (this decoder's tokens plus new ones)."""
        return self.extend(ids[len(self.ids) :], final=final)
