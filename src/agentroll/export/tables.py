"""Table exports: Parquet (pyarrow), Hugging Face `datasets`, verl's and TRL's shapes.

Each takes trajectories and an output path; pyarrow / datasets are imported only when used.
- parquet / hf: one row per segment, the full token sequence with `loss_mask` and `logprobs`
  (null where the token was not sampled), plus messages, tool results, metadata as JSON text.
- verl: `prompts`, `responses`, `response_mask`, `rollout_log_probs` (0.0 where masked),
  `token_level_rewards` (reward on the last sampled token), `reward`, `uid` (= task_id: the GRPO
  group), stop reason and tool results kept.
- trl: `prompt_ids`, `completion_ids`, `completion_mask`, `logprobs` (0.0 where masked), `reward`.
An episode whose reward could not be computed has a null `reward` (and null `token_level_rewards`), its
error in `metadata.reward_error`: filter those rows out, they are not a reward of 0.
Every kind also carries the logprobs convention and the policy version of each token (export.rows).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentroll.export.rows import segment_rows, split_row, token_level_rewards
from agentroll.trajectory import Trajectory

_KEPT = (
    "id", "task_id", "sample_index", "segment", "stop_reason", "reward", "rewards", "num_turns", "tool_results",
    "logprobs_mode", "logprobs_convention", "min_policy_version", "max_policy_version",
)  # fmt: skip


def flat_rows(trajs: Iterable[Trajectory]) -> list[dict[str, Any]]:
    return [row for t in trajs for row in segment_rows(t)]


def verl_rows(trajs: Iterable[Trajectory]) -> list[dict[str, Any]]:
    out = []
    for row in flat_rows(trajs):
        split = split_row(row, logprob_fill=0.0)
        out.append(
            {
                "uid": row["task_id"],
                **{k: row[k] for k in _KEPT},
                "prompts": split["prompt_ids"],
                "responses": split["response_ids"],
                "response_mask": split["response_mask"],
                "rollout_log_probs": split["response_logprobs"],
                "response_policy_versions": split["response_policy_versions"],
                "response_constrained_mask": split["response_constrained_mask"],
                "token_level_rewards": token_level_rewards(split["response_mask"], row["reward"]),
                "metadata": row["metadata"],
            }
        )
    return out


def trl_rows(trajs: Iterable[Trajectory]) -> list[dict[str, Any]]:
    out = []
    for row in flat_rows(trajs):
        split = split_row(row, logprob_fill=0.0)
        out.append(
            {
                **{k: row[k] for k in _KEPT},
                "prompt_ids": split["prompt_ids"],
                "completion_ids": split["response_ids"],
                "completion_mask": split["response_mask"],
                "logprobs": split["response_logprobs"],
                "completion_policy_versions": split["response_policy_versions"],
                "completion_constrained_mask": split["response_constrained_mask"],
                "metadata": row["metadata"],
            }
        )
    return out


def schema(rows_kind: str) -> Any:
    """The explicit Arrow schema of each table export (so an empty run still has typed columns)."""
    import pyarrow as pa

    ids, mask, floats = pa.list_(pa.int32()), pa.list_(pa.int8()), pa.list_(pa.float64())
    versions = pa.list_(pa.int64())
    base = [
        ("id", pa.string()),
        ("task_id", pa.string()),
        ("sample_index", pa.int32()),
        ("segment", pa.int32()),
        ("stop_reason", pa.string()),
        ("reward", pa.float64()),
        ("rewards", pa.string()),
        ("num_turns", pa.int32()),
        ("tool_results", pa.string()),
        ("metadata", pa.string()),
        ("logprobs_mode", pa.string()),
        ("logprobs_convention", pa.string()),
        ("min_policy_version", pa.int64()),
        ("max_policy_version", pa.int64()),
    ]
    extra = {
        "flat": [
            ("num_segments", pa.int32()),
            ("prompt_len", pa.int32()),
            ("token_ids", ids),
            ("loss_mask", mask),
            ("logprobs", floats),
            ("policy_versions", versions),
            ("constrained_mask", mask),
            ("messages", pa.string()),
        ],
        "verl": [
            ("uid", pa.string()),
            ("prompts", ids),
            ("responses", ids),
            ("response_mask", mask),
            ("rollout_log_probs", floats),
            ("response_policy_versions", versions),
            ("response_constrained_mask", mask),
            ("token_level_rewards", floats),
        ],
        "trl": [
            ("prompt_ids", ids),
            ("completion_ids", ids),
            ("completion_mask", mask),
            ("logprobs", floats),
            ("completion_policy_versions", versions),
            ("completion_constrained_mask", mask),
        ],
    }[rows_kind]
    return pa.schema(base + extra)


def write_parquet(rows: list[dict[str, Any]], rows_kind: str, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema(rows_kind))
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)


def write_hf(rows: list[dict[str, Any]], out: Path) -> None:
    """A `datasets.Dataset` saved with save_to_disk (read back with `datasets.load_from_disk`)."""
    import datasets
    import pyarrow as pa

    table = pa.Table.from_pylist(rows, schema=schema("flat"))
    datasets.Dataset(table).save_to_disk(str(out))
