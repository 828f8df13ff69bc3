"""Token-level records (L1): what an engine returned and what a trainer consumes.

These are the hot records, so they are slotted dataclasses, not pydantic models.
Every list that describes tokens is aligned 1:1 with `token_ids`. JSON round
trips are lossless (floats keep their repr, top-k keys stay ints).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from agentroll.types import Message, ParsedToolCall, ToolResult

TopK = list[tuple[int, float]]  # (token_id, logprob), best first


@dataclass(slots=True)
class Completion:
    """One engine generation: sampled token IDs with their logprobs, aligned."""

    token_ids: list[int]
    logprobs: list[float] | None = None
    top_logprobs: list[TopK] | None = None
    # "stop" (EOS / stop token / stop string), "length", "abort"; None while a stream is still going
    finish_reason: str | None = "stop"
    prompt_tokens: int | None = None
    cached_prompt_tokens: int | None = None  # prefix-cache hits, when the engine reports them
    token_exact: bool = True  # False when the engine returned text we had to tokenize
    meta: dict[str, Any] = field(default_factory=dict)  # engine/server name, request id, timings, logprobs_mode
    # [(first token index, policy version), ...] over token_ids: which weights sampled each token
    # (more than one entry only when the weights changed mid-generation). None: the engine cannot tell.
    policy_versions: list[tuple[int, int]] | None = None

    def __post_init__(self) -> None:
        for name in ("logprobs", "top_logprobs"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.token_ids):
                raise ValueError(f"{name}: {len(values)} entries for {len(self.token_ids)} tokens")


@dataclass(slots=True)
class Turn:
    """Per-turn token data: one generate call and what came of it."""

    index: int
    segment: int
    prompt_len: int  # tokens in the prompt of this call (the whole context so far)
    sampled_ids: list[int]
    logprobs: list[float] | None
    top_logprobs: list[TopK] | None
    finish_reason: str
    tool_calls: list[ParsedToolCall] = field(default_factory=list)
    bridge_len: int = 0  # tokens we appended after this turn (mask 0)
    generate_s: float = 0.0
    tools_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    policy_version: int | None = None  # the version of the weights that sampled this turn's first token
    # [(token index in sampled_ids, version), ...] when the weights changed during this turn; else None
    version_changes: list[tuple[int, int]] | None = None
    # Set when every sampled token of this turn was drawn under a guided-decoding constraint ("tool_call":
    # tool_choice enforced by a structural tag): its logprobs are of the constrained distribution, not of the
    # free policy a trainer recomputes. Exports carry it per token (`constrained_mask`).
    constrained: str | None = None

    def token_versions(self) -> list[int | None]:
        """The policy version of each sampled token (None where the engine did not say)."""
        versions: list[int | None] = [self.policy_version] * len(self.sampled_ids)
        for start, version in self.version_changes or ():
            versions[start:] = [version] * (len(versions) - start)
        return versions


@dataclass(slots=True)
class Segment:
    """A token sequence the model saw in one piece, with a loss mask and logprobs aligned 1:1.

    A trajectory has several segments only when the conversation could not be
    extended token-exactly (e.g. a template that strips reasoning from history);
    `reason` says why this one started.
    """

    token_ids: list[int] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    logprobs: list[float | None] = field(default_factory=list)
    reason: str = "initial"

    def extend(self, ids: list[int], *, mask: int, logprobs: list[float] | None = None) -> None:
        """Append tokens; sampled tokens (mask 1) bring their logprobs, rendered ones (mask 0) have none."""
        if logprobs is not None and len(logprobs) != len(ids):
            raise ValueError(f"logprobs: {len(logprobs)} entries for {len(ids)} tokens")
        self.token_ids.extend(ids)
        self.loss_mask.extend([mask] * len(ids))
        self.logprobs.extend(logprobs if logprobs is not None else [None] * len(ids))

    def __len__(self) -> int:
        return len(self.token_ids)


@dataclass(slots=True)
class Trajectory:
    """One finished episode, everything a trainer or a reward needs."""

    id: str
    task_id: str = ""
    sample_index: int = 0
    segments: list[Segment] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    stop_reason: str = ""
    rewards: dict[str, float | None] = field(default_factory=dict)  # None: that reward failed (reward_error)
    reward: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def constrained_mask(self, segment: int) -> list[int]:
        """Per token of a segment: 1 where it was sampled under a guided-decoding constraint (Turn.constrained:
        its logprob is of the constrained distribution, which recomputing the free policy cannot match)."""
        out = [0] * len(self.segments[segment])
        for turn in self.turns:
            if turn.segment == segment and turn.constrained:
                out[turn.prompt_len : turn.prompt_len + len(turn.sampled_ids)] = [1] * len(turn.sampled_ids)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "sample_index": self.sample_index,
            "segments": [_segment_to_dict(s) for s in self.segments],
            "turns": [_turn_to_dict(t) for t in self.turns],
            "messages": [m.model_dump(mode="json", exclude_defaults=True) for m in self.messages],
            "tool_results": [r.model_dump(mode="json") for r in self.tool_results],
            "stop_reason": self.stop_reason,
            "rewards": dict(self.rewards),
            "reward": self.reward,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trajectory:
        return cls(
            id=d["id"],
            task_id=d.get("task_id", ""),
            sample_index=d.get("sample_index", 0),
            segments=[_segment_from_dict(s) for s in d.get("segments", [])],
            turns=[_turn_from_dict(t) for t in d.get("turns", [])],
            messages=[Message.model_validate(m) for m in d.get("messages", [])],
            tool_results=[ToolResult.model_validate(r) for r in d.get("tool_results", [])],
            stop_reason=d.get("stop_reason", ""),
            rewards=dict(d.get("rewards", {})),
            reward=d.get("reward"),
            metadata=d.get("metadata", {}),
        )


def _segment_to_dict(s: Segment) -> dict[str, Any]:
    d = asdict(s)
    d["logprobs"] = _floats_to_json(s.logprobs)
    return d


def _segment_from_dict(d: dict[str, Any]) -> Segment:
    return Segment(**{**d, "logprobs": _floats_from_json(d.get("logprobs", []))})


def _turn_to_dict(t: Turn) -> dict[str, Any]:
    d = {name: getattr(t, name) for name in Turn.__slots__}
    d["tool_calls"] = [c.model_dump(mode="json") for c in t.tool_calls]
    d["logprobs"] = _floats_to_json(t.logprobs)
    if t.top_logprobs is not None:
        d["top_logprobs"] = [[(i, _float_to_json(lp)) for i, lp in row] for row in t.top_logprobs]
    return d


def _turn_from_dict(d: dict[str, Any]) -> Turn:
    d = dict(d)
    if d.get("version_changes") is not None:
        d["version_changes"] = [(int(i), int(v)) for i, v in d["version_changes"]]
    d["tool_calls"] = [ParsedToolCall.model_validate(c) for c in d.get("tool_calls", [])]
    d["logprobs"] = _floats_from_json(d.get("logprobs"))
    if d.get("top_logprobs") is not None:
        d["top_logprobs"] = [[(int(i), float(lp)) for i, lp in row] for row in d["top_logprobs"]]
    return Turn(**d)


def _floats_to_json(values: list[float | None] | None) -> list[float | str | None] | None:
    """-inf logprobs are legal (a token the sampler could not pick); JSON has no inf, so spell it ("-inf"),
    so that strict JSON readers (pyarrow, jq, other languages) can read the trajectories."""
    if values is None:
        return None
    return [None if v is None else _float_to_json(v) for v in values]


def _float_to_json(v: float) -> float | str:
    return v if math.isfinite(v) else repr(v)


def _floats_from_json(values: list[float | str | None] | None) -> list[float | None] | None:
    return None if values is None else [None if v is None else float(v) for v in values]
