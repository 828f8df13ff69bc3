"""Rewards and budgets are pure functions of the episode: tested without an engine."""

from __future__ import annotations

import pytest

from agentroll.agent.limits import Budget, Stop, check
from agentroll.agent.rewards import exact_match, final_answer, get_reward, group_stats, recall_at_k, score
from agentroll.agent.task import EpisodeConfig, Task
from agentroll.errors import UnknownNameError
from agentroll.trajectory import Trajectory
from agentroll.types import Message, SamplingParams, ToolResult

TASK = Task(
    id="t", messages=(Message(role="user", content="q"),), answer="1,234", metadata={"relevant_doc_ids": ["d1", "d2"]}
)


def _traj(answer_text: str, doc_ids: list[list[str]] = ()) -> Trajectory:
    results = [ToolResult(tool_call_id=f"c{i}", name="retrieve", content="...", metadata={"doc_ids": ids})
               for i, ids in enumerate(doc_ids)]  # fmt: skip
    return Trajectory(id="e", messages=[TASK.messages[0], Message(role="assistant", content=answer_text)],
                      tool_results=results, stop_reason="done")  # fmt: skip


@pytest.mark.parametrize(
    "text,expected",
    [("so the total is 1234.", "1234"), ("#### 1,234", "1,234"), ("\\boxed{42} then 7", "42"), ("no number", None)],
)
def test_final_answer_prefers_explicit_markers_then_the_last_number(text, expected):
    assert final_answer(text) == expected


def test_exact_match_compares_numbers_not_formatting():
    assert exact_match(_traj("It is 1234"), TASK) == 1.0
    assert exact_match(_traj("It is 1233"), TASK) == 0.0


def test_recall_counts_retrieved_document_ids_from_tool_metadata():
    traj = _traj("x", doc_ids=[["d9", "d1"], ["d3"]])
    assert recall_at_k()(traj, TASK) == 0.5
    assert recall_at_k(1)(traj, TASK) == 0.0  # d1 was ranked second


def test_score_fills_components_and_weighted_total():
    traj = _traj("1234", doc_ids=[["d1", "d2"]])
    fns = {n: get_reward(n) for n in ("exact_match", "recall_at_k:2", "used_tools")}
    score(traj, TASK, {"exact_match": 1.0, "recall_at_k:2": 0.5, "used_tools": 0.1}, fns)
    assert traj.rewards == {"exact_match": 1.0, "recall_at_k:2": 1.0, "used_tools": 1.0}
    assert traj.reward == pytest.approx(1.6)


def test_unknown_reward_names_the_available_ones():
    with pytest.raises(UnknownNameError, match="exact_match"):
        get_reward("bleu")


def test_group_advantages_are_centered_and_scaled():
    stats = group_stats([1.0, 0.0, 1.0, 0.0])
    assert stats["mean"] == 0.5 and stats["std"] == 0.5
    assert stats["advantages"] == pytest.approx([1.0, -1.0, 1.0, -1.0], rel=1e-5)


def test_budget_checks_each_limit_before_a_turn():
    config = EpisodeConfig(sampling=SamplingParams(max_tokens=100), max_turns=2, max_episode_tokens=1000)
    assert check(Budget(), config, 10, 2048) is None
    assert check(Budget(turns=2), config, 10, 2048) == Stop.MAX_TURNS
    assert check(Budget(), config, 1000, 4096) == Stop.MAX_EPISODE_TOKENS
    assert check(Budget(), config, 950, 1000) == Stop.CONTEXT_OVERFLOW  # never sent to the engine
    assert check(Budget(parse_errors=3), config, 10, 2048) == Stop.PARSE_ERRORS
