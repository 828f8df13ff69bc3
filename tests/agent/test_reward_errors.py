"""Rewards that never lie: a scorer that raises (the environment's or a built-in) gives no reward (None), a
flag trainers can filter on and a count in the summary, never a 0; a reward name nothing answers stops the run
at its start. A real runner, renderer and environment (tests/agent/counter_env.py); the engine is a
ReplayEngine because it is not what is tested here."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from agentroll.agent.rewards import get_reward, group_stats, score
from agentroll.agent.task import Task
from agentroll.engines.replay import ReplayEngine
from agentroll.errors import ConfigError
from agentroll.export.tables import trl_rows, verl_rows
from agentroll.integrations.trl import _component, _reward_fields
from agentroll.renderers import get_renderer
from agentroll.rollout.config import config_from_dict
from agentroll.rollout.runner import run
from agentroll.rollout.store import read_records
from agentroll.trajectory import Trajectory
from agentroll.types import Message

ENV = "tests.agent.counter_env:Counter"


def _answer() -> list[int]:
    renderer = get_renderer("smollm2")
    return [*renderer.tokenizer.encode("Done."), renderer.stop_token_ids()[0]]


def _config(tmp: Path, rewards: dict[str, float], environment: str = ENV, **options):
    data = tmp / "tasks.jsonl"
    data.write_text('{"question": "Say done."}\n')
    return config_from_dict(
        {
            "dataset": {"path": str(data)}, "samples_per_task": 2, "environment": environment,
            "environment_options": options, "rewards": rewards, "concurrency": 2,
            "episode": {"max_turns": 2, "sampling": {"max_tokens": 16}},
        }
    )  # fmt: skip


def _run(config, out: Path, engine: ReplayEngine) -> tuple[dict, dict[str, Trajectory]]:
    summary = asyncio.run(run(config, out, engine=engine, progress=False))
    return summary, {t.id: t for t in map(Trajectory.from_dict, read_records(Path(summary["trajectories"])))}


def test_an_environment_whose_scorer_raises_gives_no_reward_a_flag_and_a_count(tmp_path):
    config = _config(tmp_path, {"env:count": 1.0, "used_tools": 0.5}, fail_score_for=("0:1",))
    summary, trajs = _run(config, tmp_path / "run", ReplayEngine([_answer()]))
    failed, fine = trajs["0:1"], trajs["0:0"]
    assert failed.stop_reason == fine.stop_reason == "done"  # the episode itself went well: its tokens are data
    assert failed.reward is None and failed.rewards == {"env:count": None, "used_tools": 0.0}
    assert failed.metadata["reward_error"] == {
        "env:count": "RuntimeError: the environment's score failed: RuntimeError: scorer broke"
    }
    assert fine.reward == 0.0 and fine.rewards == {"env:count": 0.0, "used_tools": 0.0}
    assert "reward_error" not in fine.metadata
    assert summary["reward_errors"] == 1
    assert summary["reward"]["n"] == 1 and summary["reward_components"]["env:count"]["errors"] == 1
    assert summary["reward_components"]["used_tools"] == {**summary["reward_components"]["used_tools"], "n": 2}
    assert summary["groups"]["0"]["n"] == 1  # the failed sample is not in its group's statistics
    # what a trainer reads: a null reward, never a row of zeros
    verl = {r["id"]: r for r in verl_rows(trajs.values())}
    assert verl["0:1"]["reward"] is None and verl["0:1"]["token_level_rewards"] is None
    assert verl["0:0"]["token_level_rewards"][-1] == 0.0
    assert {r["id"]: r["reward"] for r in trl_rows(trajs.values())}["0:1"] is None


def test_trls_reward_functions_give_none_for_every_component_of_a_failed_episode(tmp_path):
    config = _config(tmp_path, {"env:count": 1.0, "used_tools": 0.5}, fail_score_for=("0:1",))
    _, trajs = _run(config, tmp_path / "run", ReplayEngine([_answer()]))
    fields = _reward_fields([trajs["0:0"], trajs["0:1"]])
    # every function None for the row: TRL 1.16 then treats it as unscorable (no baseline share, advantage 0)
    # instead of summing the components that did compute
    for name in config.rewards:
        assert _component(name)(completions=["a", "b"], **fields) == [0.0, None]


def test_a_builtin_reward_that_raises_or_gives_no_number_is_recorded_not_raised():
    task = Task(id="t", messages=(Message(role="user", content="q"),), answer="4", metadata={"relevant_doc_ids": 5})
    traj = Trajectory(id="t:0", messages=[*task.messages, Message(role="assistant", content="4")], stop_reason="done")
    weights = {"exact_match": 1.0, "recall_at_k": 1.0, "nan": 0.0}
    fns = {"exact_match": get_reward("exact_match"), "recall_at_k": get_reward("recall_at_k"),
           "nan": lambda traj, task: math.nan}  # fmt: skip
    score(traj, task, weights, fns)
    assert traj.rewards == {"exact_match": 1.0, "recall_at_k": None, "nan": None}
    assert traj.metadata["reward_error"]["recall_at_k"].startswith("TypeError:")
    assert traj.metadata["reward_error"]["nan"] == "ValueError: not a finite number: nan"
    assert traj.reward is None
    score(traj, task, {"exact_match": 1.0, "nan": 0.0}, fns)  # a failed weight-0 component leaves the total
    assert traj.reward == 1.0 and set(traj.metadata["reward_error"]) == {"nan"}


def test_group_statistics_leave_out_the_samples_without_a_reward():
    stats = group_stats([1.0, None, 0.0])
    assert stats["mean"] == 0.5 and stats["std"] == 0.5
    assert stats["advantages"][1] is None and stats["advantages"][0] == pytest.approx(1.0, rel=1e-5)


def test_a_misspelt_reward_name_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"rewards.*unknown reward 'exact_mach'.*exact_match"):
        _config(tmp_path, {"exact_mach": 1.0})
    with pytest.raises(ConfigError, match="not a finite number"):
        _config(tmp_path, {"exact_match": math.nan})


@pytest.mark.parametrize(
    "environment,reward,offers",
    [(ENV, "env:cont", "env:count"), ("tools", "env:count", "none")],
)
def test_an_environment_reward_the_environment_does_not_produce_stops_the_run_at_its_start(
    tmp_path, environment, reward, offers
):
    engine = ReplayEngine([_answer()])
    with pytest.raises(ConfigError, match=rf"{reward}: environment .* scores no such component; it offers: {offers}"):
        asyncio.run(run(_config(tmp_path, {reward: 1.0}, environment), tmp_path / "run", engine=engine, progress=False))
    assert engine.calls == 0  # before any episode
    lines = tmp_path / "run" / "trajectories.jsonl"
    assert not lines.exists() or lines.read_text() == ""


def test_an_environment_that_declares_no_reward_names_is_warned_about_not_refused(tmp_path):
    """A factory from before reward_names existed still runs; its env: rewards cannot be checked up front."""
    from agentroll.agent.rewards import check_environment_rewards

    with pytest.warns(UserWarning, match="declares no reward_names: rewards env:score cannot be checked"):
        check_environment_rewards({"env:score": 1.0}, "legacy", None)
    with pytest.raises(ConfigError, match="it offers: none"):
        check_environment_rewards({"env:score": 1.0}, "tools", frozenset())
