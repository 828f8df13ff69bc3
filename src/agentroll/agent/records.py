"""Token bookkeeping shared by everything that builds a trajectory from engine calls
(the episode loop, the server's sessions): the loss mask is set where a token is produced."""

from __future__ import annotations

import time
from typing import Any

from agentroll.engines.base import UNKNOWN
from agentroll.trajectory import Completion, Segment, Turn
from agentroll.types import ParsedMessage, SamplingParams

# A check-mask value: tokens we rendered inside the model's turn (a forced tool-call opener). They train
# like rendered tokens (loss mask 0) but belong to the turn's text for the prefix check.
FORCED = 2


def append_tokens(
    segment: Segment, check_mask: list[int], ids: list[int], mask: int, logprobs: list[float] | None = None
) -> None:
    """Sampled (mask 1) tokens bring their logprobs; rendered (0) and forced (FORCED) ones train as 0."""
    segment.extend(list(ids), mask=1 if mask == 1 else 0, logprobs=logprobs)
    check_mask.extend([mask] * len(ids))


def turn_record(
    completion: Completion, parsed: ParsedMessage, *, index: int, segment: int, context_len: int, forced: int,
    started: float,
) -> Turn:  # fmt: skip
    """The per-turn record of one generate call; `context_len` counts the segment with the sampled tokens."""
    meta = {k: v for k, v in completion.meta.items() if k != "text"}
    now = time.monotonic()
    meta["started_at"] = round(time.time() - (now - started), 3)  # wall clock: throughput over a run's time
    if forced:
        meta["forced_prefix_len"] = forced
    starts = completion.policy_versions or []
    return Turn(
        policy_version=starts[0][1] if starts else None,
        version_changes=starts[1:] or None,
        index=index,
        segment=segment,
        prompt_len=context_len - len(completion.token_ids),
        sampled_ids=list(completion.token_ids),
        logprobs=completion.logprobs,
        top_logprobs=completion.top_logprobs,
        finish_reason=completion.finish_reason,
        tool_calls=list(parsed.tool_calls),
        generate_s=now - started,
        meta=meta,
    )


def logprobs_convention(sampling: SamplingParams) -> dict[str, Any]:
    """Trajectory.metadata["logprobs"]: the parameters that define the distribution the logprobs are of.

    `mode` (engines.base: "processed" = the sampling distribution, "raw" = the model's at temperature 1,
    "unknown") is filled in from the engine's first answer; "mixed" if later answers say otherwise."""
    return {
        "mode": None,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "min_p": sampling.min_p,
        "repetition_penalty": sampling.repetition_penalty,
        "constrained": sampling.json_schema is not None,  # a grammar masked the distribution
    }


def note_logprobs_mode(convention: dict[str, Any], completion: Completion) -> None:
    mode = completion.meta.get("logprobs_mode", UNKNOWN)
    if convention.get("mode") is None:
        convention["mode"] = mode
    elif convention["mode"] != mode:
        convention["mode"] = "mixed"
