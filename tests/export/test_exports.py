"""Every export format read back with the library its users use; shapes and masks match the trajectory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentroll.export import export
from agentroll.trajectory import Segment, Trajectory, Turn
from agentroll.types import Message, ToolResult


def two_segment_trajectory() -> Trajectory:
    """prompt | sampled call | tool result (rendered) | sampled answer; then a re-rendered second segment."""
    first = Segment()
    first.extend([10, 11, 12], mask=0)
    first.extend([20, 21], mask=1, logprobs=[-0.1, -0.2])
    first.extend([30, 31, 32], mask=0)  # the bridge: tool result + next opener
    first.extend([40], mask=1, logprobs=[-0.4])
    second = Segment(reason="history re-rendered")
    second.extend([10, 11, 50], mask=0)
    second.extend([60, 61], mask=1, logprobs=[-0.6, -0.7])
    result = ToolResult(tool_call_id="c0", name="retrieve", content="doc", metadata={"doc_ids": ["d7"]})
    return Trajectory(
        id="t:1",
        task_id="t",
        sample_index=1,
        segments=[first, second],
        turns=[
            Turn(
                index=0,
                segment=0,
                prompt_len=3,
                sampled_ids=[20, 21],
                logprobs=[-0.1, -0.2],
                top_logprobs=None,
                finish_reason="stop",
            )
        ],
        messages=[Message(role="user", content="q")],
        tool_results=[result],
        stop_reason="max_turns",
        rewards={"exact_match": 1.0},
        reward=0.5,
    )


@pytest.fixture
def traj() -> Trajectory:
    return two_segment_trajectory()


def test_jsonl_export_round_trips_losslessly(traj: Trajectory, tmp_path: Path) -> None:
    export([traj], "jsonl", tmp_path / "t.jsonl")
    back = Trajectory.from_dict(json.loads((tmp_path / "t.jsonl").read_text()))
    assert back.to_dict() == traj.to_dict()


def test_parquet_rows_are_segments_with_aligned_mask_and_null_logprobs(traj: Trajectory, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    export([traj], "parquet", tmp_path / "t.parquet")
    rows = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert len(rows) == 2
    for row, seg in zip(rows, traj.segments, strict=True):
        assert row["token_ids"] == seg.token_ids and row["loss_mask"] == seg.loss_mask
        assert row["logprobs"] == seg.logprobs  # None exactly where the mask is 0
    assert rows[0]["prompt_len"] == 3 and rows[1]["prompt_len"] == 3
    assert json.loads(rows[0]["tool_results"])[0]["metadata"] == {"doc_ids": ["d7"]}
    assert rows[0]["stop_reason"] == "max_turns" and rows[0]["reward"] == 0.5


def test_hf_dataset_loads_with_datasets(traj: Trajectory, tmp_path: Path) -> None:
    import datasets

    export([traj], "hf", tmp_path / "hf")
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert ds.num_rows == 2 and ds[1]["token_ids"] == traj.segments[1].token_ids
    assert ds[0]["loss_mask"] == traj.segments[0].loss_mask
    assert json.loads(ds[0]["rewards"]) == {"exact_match": 1.0}


def test_verl_response_is_everything_after_the_first_prompt_mask_only_on_sampled(
    traj: Trajectory, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    export([traj], "verl", tmp_path / "v.parquet")
    row = pq.read_table(tmp_path / "v.parquet").to_pylist()[0]
    assert row["prompts"] == [10, 11, 12]
    assert row["responses"] == [20, 21, 30, 31, 32, 40]
    assert row["response_mask"] == [1, 1, 0, 0, 0, 1]
    assert row["rollout_log_probs"] == [-0.1, -0.2, 0.0, 0.0, 0.0, -0.4]
    assert row["token_level_rewards"] == [0, 0, 0, 0, 0, 0.5]  # outcome reward on the last sampled token
    assert row["uid"] == "t" and row["stop_reason"] == "max_turns"


def test_trl_completion_mask_excludes_tool_tokens(traj: Trajectory, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    export([traj], "trl", tmp_path / "t.parquet")
    rows = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert rows[0]["completion_ids"] == [20, 21, 30, 31, 32, 40]
    assert rows[0]["completion_mask"] == [1, 1, 0, 0, 0, 1]
    assert len(rows[0]["logprobs"]) == len(rows[0]["completion_ids"])
    assert rows[1]["prompt_ids"] == [10, 11, 50] and rows[1]["completion_mask"] == [1, 1]


def test_exports_say_which_policy_sampled_each_token_and_of_which_distribution(tmp_path: Path) -> None:
    """A turn whose weights changed mid-generation (keep mode): each token keeps its own version."""
    import pyarrow.parquet as pq

    traj = two_segment_trajectory()
    traj.turns[0].policy_version, traj.turns[0].version_changes = 3, [(1, 4)]
    traj.turns.append(
        Turn(index=1, segment=0, prompt_len=8, sampled_ids=[40], logprobs=[-0.4], top_logprobs=None,
             finish_reason="stop", policy_version=4)
    )  # fmt: skip
    traj.metadata["logprobs"] = {"mode": "processed", "temperature": 0.7, "top_p": 0.9}
    back = Trajectory.from_dict(json.loads(json.dumps(traj.to_dict())))
    assert back.turns[0].version_changes == [(1, 4)] and back.turns[0].token_versions() == [3, 4]
    export([back], "verl", tmp_path / "v.parquet")
    row = pq.read_table(tmp_path / "v.parquet").to_pylist()[0]
    assert row["response_policy_versions"] == [3, 4, -1, -1, -1, 4]  # aligned with response_mask [1,1,0,0,0,1]
    assert row["response_mask"] == [1, 1, 0, 0, 0, 1]
    assert (row["min_policy_version"], row["max_policy_version"]) == (3, 4)
    assert row["logprobs_mode"] == "processed" and json.loads(row["logprobs_convention"])["temperature"] == 0.7
    export([back], "trl", tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").to_pylist()[0]["completion_policy_versions"][:2] == [3, 4]
