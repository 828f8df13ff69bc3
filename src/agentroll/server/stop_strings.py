"""A request's `stop` strings, as the client sees them: the text ends before the first one.

An engine that stops on a stop string still returns the tokens that spell it (vLLM cuts only its
detokenized text), and those tokens are what the model sampled: sessions and `token_ids` keep them.
What the client reads is cut before the stop string, as OpenAI and vLLM return it. A stream holds back
any text that could be the start of a stop string until it is known not to be one.
"""

from __future__ import annotations

from collections.abc import Sequence


def cut(text: str, stops: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return text[: min(hits)] if hits else text


class StopFilter:
    """Streamed text in, text safe to send out: joined, the outputs (with `flush`) are `cut(all text)`."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped or not self.stops:
            return "" if self.stopped else text
        buf = self.held + text
        out = cut(buf, self.stops)
        if len(out) < len(buf):  # a whole stop string: nothing after it is sent
            self.stopped, self.held = True, ""
            return out
        keep = self._partial_stop(buf)
        self.held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """The text held back at the end: it never became a stop string."""
        out, self.held = self.held, ""
        return out

    def _partial_stop(self, buf: str) -> int:
        """Length of the longest end of `buf` that a stop string starts with."""
        for n in range(min(len(buf), max(len(s) for s in self.stops) - 1), 0, -1):
            tail = buf[-n:]
            if any(s.startswith(tail) for s in self.stops):
                return n
        return 0
