"""agentroll eval's statistics: pass@k against brute-force enumeration, bootstrap intervals, tool-use counts."""

from __future__ import annotations

import itertools
import statistics
from fractions import Fraction

import pytest

from agentroll.agent import Task
from agentroll.agent.rewards import answer_from_tool
from agentroll.rollout.evaluate import bootstrap_interval, compare, evaluate, pass_at_k, score_run
from agentroll.rollout.summary import Tally
from agentroll.trajectory import Trajectory, Turn
from agentroll.types import Message, ParsedToolCall, ToolCall, ToolResult


@pytest.mark.parametrize("n,c,k", [(n, c, k) for n in range(1, 7) for c in range(n + 1) for k in range(1, n + 1)])
def test_pass_at_k_is_the_share_of_k_subsets_holding_a_correct_sample(n, c, k):
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    exact = Fraction(sum(any(s) for s in subsets), len(subsets))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), abs=1e-12)


def test_pass_at_k_needs_k_samples():
    with pytest.raises(ValueError, match="at least 4 samples"):
        pass_at_k(2, 1, 4)


def test_the_bootstrap_interval_is_reproducible_and_holds_the_mean():
    values = [0.0, 0.5, 1.0, 1.0, 0.0, 0.25, 0.75, 1.0]
    low, high = bootstrap_interval(values, statistics.fmean)
    assert (low, high) == bootstrap_interval(values, statistics.fmean)
    assert low < statistics.fmean(values) < high
    assert bootstrap_interval([0.5] * 5, statistics.fmean) == (0.5, 0.5)


def _episode(task: str, sample: int, *, correct: bool, answer: str, result: str | None, reward: float | None = 0.0):
    """A finished episode: an optional calculator call and its result, then a final answer."""
    turns, results, messages = [], [], [Message(role="user", content="q")]
    if result is not None:
        call = ToolCall(id="c", name="calculator", arguments={"expression": "1+1"})
        turns.append(
            Turn(0, 0, 5, [1, 2], None, None, "stop", [ParsedToolCall(status="ok", raw="", span=(0, 2), call=call)])
        )
        results.append(ToolResult(tool_call_id="c", name="calculator", content=result))
        messages += [Message(role="assistant", tool_calls=(call,)), results[-1].to_message()]
    turns.append(Turn(len(turns), 0, 9, [3], None, None, "stop"))
    messages.append(Message(role="assistant", content=f"so #### {answer}"))
    rewards: dict[str, float | None] = {"exact_match": float(correct)}
    return Trajectory(id=f"{task}:{sample}", task_id=task, sample_index=sample, turns=turns, messages=messages,
                      tool_results=results, stop_reason="done", rewards=rewards, reward=reward)  # fmt: skip


TASKS = [Task(id=t, messages=(Message(role="user", content="q"),), metadata={"row": {"level": lvl}})
         for t, lvl in (("a", "easy"), ("b", "easy"), ("c", "hard"))]  # fmt: skip


def test_a_report_counts_successes_tool_use_and_categories():
    trajs = [
        _episode("a", 0, correct=True, answer="2", result="2", reward=1.0),
        _episode("a", 1, correct=False, answer="3", result=None),
        _episode("b", 0, correct=True, answer="7", result=None, reward=1.0),
        _episode("b", 1, correct=True, answer="7", result="x = 7.0", reward=1.0),
        _episode("c", 0, correct=False, answer="1", result="2"),
        _episode("c", 1, correct=False, answer="1", result=None, reward=None),
    ]
    trajs[-1].rewards["exact_match"] = None  # a reward that could not be computed: unscored, not a failure
    report = evaluate(score_run(trajs, TASKS, metric="exact_match", by="level"), ks=(1, 2))
    assert report["tasks"] == 3 and report["episodes"] == 6 and report["unscored"] == 1
    assert report["pass@1"]["mean"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert "pass@2" not in report  # task c has one scored sample: pass@2 is not defined for it
    assert report["tool_calls_per_episode"] == pytest.approx(3 / 6)
    assert report["answers_from_tools"] == pytest.approx(2 / 6)  # "2" from "2", "7" from "x = 7.0"; c's "1" is not
    assert report["successes_from_tools"] == pytest.approx(2 / 3)
    assert report["categories"]["easy"]["pass@2"]["mean"] == 1.0
    assert report["categories"]["hard"]["pass@1"]["mean"] == 0.0
    assert report["reward"]["n"] == 3  # per-task means over the episodes that have a reward


def test_compare_is_the_paired_per_task_difference():
    base = [_episode(t, s, correct=False, answer="0", result=None) for t in "abc" for s in range(2)]
    better = [_episode(t, s, correct=t != "c", answer="1", result="1", reward=float(t != "c"))
              for t in "abc" for s in range(2)]  # fmt: skip
    diff = compare(score_run(base, TASKS, metric="exact_match", by=None),
                   score_run(better, TASKS, metric="exact_match", by=None))  # fmt: skip
    assert diff["tasks"] == 3 and diff["only_in_one"] == 0
    assert diff["success_rate_difference"]["mean"] == pytest.approx(2 / 3)
    assert 0 <= diff["success_rate_difference"]["low"] <= 2 / 3 <= diff["success_rate_difference"]["high"] <= 1


def test_an_answer_is_from_a_tool_when_it_is_a_result_or_a_number_in_one():
    assert answer_from_tool("#### 391", ["391"])
    assert answer_from_tool("The total is 1,200.", ["Result: 1200.0"])
    assert not answer_from_tool("#### 12", ["120"])
    assert not answer_from_tool(None, ["1"]) and not answer_from_tool("#### 3", [])


def test_the_run_summary_counts_calls_made_calls_that_ran_and_answers_from_tools():
    tally = Tally()
    good = _episode("a", 0, correct=True, answer="2", result="2")
    failed = _episode("b", 0, correct=False, answer="5", result="error: division by zero")
    failed.tool_results[0] = failed.tool_results[0].model_copy(update={"is_error": True})
    for t in (good, failed, _episode("c", 0, correct=False, answer="1", result=None)):
        tally.add(t.to_dict())
    assert (tally.calls_made, tally.calls_ran, tally.tool_errors, tally.answers_from_tools) == (2, 1, 1, 1)
