"""Regions: what a format's `scan` returns, in text order (content, reasoning, calls)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agentroll.types import ParseStatus

UNSET: Any = object()  # RawCall.arguments not decoded by the format: finalize decodes args_text


@dataclass(slots=True)
class TextRegion:
    """Plain text of the turn: content, or reasoning (e.g. harmony's analysis channel)."""

    start: int
    end: int
    kind: Literal["content", "reasoning"] = "content"


@dataclass(slots=True)
class RawCall:
    """A call as the format found it, before statuses are decided.

    While `closed` is False (the text ended inside the call) `name` must be set
    only once it is complete, and `args_text` must be a prefix of the argument
    text the finished call would have: streaming relies on both. A format that
    carries ids must set `call_id` no later than `name`.
    """

    start: int
    end: int
    closed: bool
    name: str | None = None
    args_text: str | None = None  # arguments as written (JSON text); None: the call carries none
    arguments: Any = UNSET  # decoded arguments, for formats whose arguments are not JSON text
    call_id: str | None = None
    status: ParseStatus | None = None  # a failure the format decided itself (e.g. bad envelope JSON)
    error: str | None = None
    complete: bool = False  # closed=False, but the call's own body was whole (a lenient parse may use it)
    # The call breaks the format in a way vLLM's parser repairs (e.g. "text_before_calls"): a strict parse
    # reports `status` / `error`, a lenient one uses the call anyway and marks it salvaged with this name.
    repair: str | None = None


Region = TextRegion | RawCall
