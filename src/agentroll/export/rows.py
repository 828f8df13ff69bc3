"""Trajectories -> flat training rows, one per segment (most trajectories have one).

A segment's prompt is its tokens before the first sampled token; its response is everything after,
sampled tokens (mask 1, with logprobs) and tokens we rendered between turns (tool results, turn
openers: mask 0, no logprob). Multi-turn episodes are therefore one row, not one per turn.

Every row says which distribution its logprobs are of (`logprobs_mode`: "processed" = the sampling
distribution, "raw" = the model's at temperature 1; `logprobs_convention`: that and the sampling
parameters, JSON) and which policy sampled each token (`policy_versions`, aligned with the tokens,
-1 where the token was not sampled; `min_policy_version` / `max_policy_version`), and which tokens were
sampled under a guided-decoding constraint (`constrained_mask`: their logprobs are of the constrained
distribution, which a trainer recomputing the free policy will not match).
"""

from __future__ import annotations

import json
from typing import Any

from agentroll.trajectory import Segment, Trajectory


def prompt_length(segment: Segment) -> int:
    """Tokens before the first sampled one (all of them when nothing was sampled)."""
    return next((i for i, m in enumerate(segment.loss_mask) if m == 1), len(segment.loss_mask))


NOT_SAMPLED = -1  # the policy version of a token we rendered (prompt, tool output, template)


def token_policy_versions(traj: Trajectory, segment: int) -> list[int]:
    """Per token of a segment: the version that sampled it (from its turn), NOT_SAMPLED elsewhere."""
    out = [NOT_SAMPLED] * len(traj.segments[segment])
    for turn in traj.turns:
        if turn.segment == segment:
            for offset, version in enumerate(turn.token_versions()):
                out[turn.prompt_len + offset] = NOT_SAMPLED if version is None else version
    return out


def segment_rows(traj: Trajectory) -> list[dict[str, Any]]:
    """The shared columns every table export starts from: identity, outcome, tokens, JSON-encoded context."""
    rows = []
    convention = traj.metadata.get("logprobs") or {}
    for index, seg in enumerate(traj.segments):
        versions = token_policy_versions(traj, index)
        sampled = [v for v in versions if v != NOT_SAMPLED]
        rows.append(
            {
                "id": traj.id,
                "task_id": traj.task_id,
                "sample_index": traj.sample_index,
                "segment": index,
                "num_segments": len(traj.segments),
                "stop_reason": traj.stop_reason,
                "reward": traj.reward,
                "rewards": json.dumps(traj.rewards),
                "num_turns": len(traj.turns),
                "prompt_len": prompt_length(seg),
                "token_ids": list(seg.token_ids),
                "loss_mask": list(seg.loss_mask),
                "logprobs": list(seg.logprobs),
                "logprobs_mode": str(convention.get("mode") or "unknown"),
                "logprobs_convention": json.dumps(convention),
                "policy_versions": versions,
                "min_policy_version": min(sampled, default=None),
                "max_policy_version": max(sampled, default=None),
                "constrained_mask": traj.constrained_mask(index),
                "messages": json.dumps([m.model_dump(mode="json", exclude_defaults=True) for m in traj.messages]),
                "tool_results": json.dumps([r.model_dump(mode="json") for r in traj.tool_results]),
                "metadata": json.dumps(traj.metadata, default=str),
            }
        )
    return rows


def split_row(row: dict[str, Any], *, logprob_fill: float | None) -> dict[str, Any]:
    """Prompt/response view of a segment row: response = everything after the first prompt, mask aligned."""
    n = row["prompt_len"]
    logprobs = row["logprobs"][n:]
    return {
        "prompt_ids": row["token_ids"][:n],
        "response_ids": row["token_ids"][n:],
        "response_mask": row["loss_mask"][n:],
        "response_logprobs": [logprob_fill if lp is None else lp for lp in logprobs],
        "response_policy_versions": row["policy_versions"][n:],
        "response_constrained_mask": row["constrained_mask"][n:],
    }


def token_level_rewards(response_mask: list[int], reward: float | None) -> list[float] | None:
    """The sequence reward on the last sampled token, 0 elsewhere (how verl places an outcome reward). None (a
    null cell) for an episode without a reward (its scorer failed: metadata reward_error), not a row of zeros."""
    if reward is None:
        return None
    out = [0.0] * len(response_mask)
    last = max((i for i, m in enumerate(response_mask) if m == 1), default=None)
    if last is not None:
        out[last] = float(reward)
    return out
