"""Per-episode environments on the real embedded engine: state isolation between concurrent samples of one
task, teardown whatever the stop reason, setup failures as recorded stop reasons, the concurrency cap, the
environment's score as `env:NAME` rewards, and the registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agentroll.agent.env_registry import available, make_environment
from agentroll.errors import ConfigError, UnknownNameError
from agentroll.rollout.config import config_from_dict
from agentroll.rollout.runner import run
from agentroll.rollout.store import read_records
from agentroll.trajectory import Trajectory

from .counter_env import Counter

ENV = "tests.agent.counter_env:Counter"


def test_the_registry_builds_named_and_path_environments_and_lists_them():
    assert make_environment("tools").name == "tools"
    env = make_environment(ENV, max_concurrent=2)
    assert isinstance(env, Counter) and env.max_concurrent == 2
    with pytest.raises(UnknownNameError, match="tools"):
        make_environment("nope")
    with pytest.raises(ConfigError, match="bad environment_options"):
        make_environment(ENV, colour="red")
    with pytest.raises(ConfigError, match="not an environment factory"):
        make_environment("agentroll.tools:Toolset")
    assert "tools" in available()
    out = subprocess.run(
        [sys.executable, "-m", "agentroll", "envs", "list"], capture_output=True, text=True, check=True
    )
    listed = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()}
    assert listed["tools"] == "agentroll.agent.lifecycle:ToolsEnvironment"
    assert {"bfcl", "bfcl_multi_turn", "python_session", "simulated_user", "repo_task"} <= set(listed)


def _config(tmp: Path, **env) -> object:
    data = tmp / "tasks.jsonl"
    data.write_text('{"question": "Bump the counter, then say done."}\n')
    return config_from_dict(
        {
            "dataset": {"path": str(data)},
            "samples_per_task": 4,
            "environment": ENV,
            "environment_options": env,
            "episode": {
                "tool_choice": "bump", "tool_choice_turns": 1, "tool_choice_enforcement": "guided", "max_turns": 3,
                "sampling": {"max_tokens": 48, "temperature": 1.0, "seed": 0, "stop": ["</tool_call>"]},
            },
            "rewards": {"env:count": 1.0},
            "concurrency": 4,
        }
    )  # fmt: skip


@pytest.mark.slow
def test_concurrent_samples_of_one_task_never_share_state_and_nothing_is_left(loop, embedded, tmp_path):
    Counter.instances.clear()
    summary = loop.run(run(_config(tmp_path, max_concurrent=2), tmp_path / "run", engine=embedded, progress=False))
    (env,) = Counter.instances
    trajs = [Trajectory.from_dict(r) for r in read_records(Path(summary["trajectories"]))]
    assert len(trajs) == 4 and env.live == set() and sorted(env.torn_down) == sorted(t.id for t in trajs)
    assert env.peak <= 2  # max_concurrent
    for t in trajs:
        bumps = [r for r in t.tool_results if not r.is_error]
        assert bumps, t.turns[0].tool_calls  # the first turn was held to a call
        # each episode counted only its own calls: a shared counter would reach the others' counts
        assert t.metadata["environment_rewards"] == {"count": len(bumps)} and t.reward == len(bumps)
        assert all(f"(episode {t.id})" in r.content for r in bumps)
        timings = t.metadata["environment"]
        assert timings["name"] == "counter" and timings["setup_s"] >= 0 and timings["teardown_s"] >= 0


@pytest.mark.slow
def test_failed_setup_score_and_teardown_are_recorded_and_give_no_reward(loop, embedded, tmp_path):
    Counter.instances.clear()
    config = _config(tmp_path, fail_setup_for=("0:1",), fail_score_for=("0:2",), fail_teardown=True)
    summary = loop.run(run(config, tmp_path / "run", engine=embedded, progress=False))
    trajs = {t.id: t for t in map(Trajectory.from_dict, read_records(Path(summary["trajectories"])))}
    assert len(trajs) == 4  # the run went on
    assert trajs["0:1"].stop_reason == "environment_error" and "no counter for 0:1" in trajs["0:1"].metadata["error"]
    assert trajs["0:1"].turns == []
    for eid in ("0:0", "0:2", "0:3"):
        assert trajs[eid].metadata["environment"]["teardown_error"] == "RuntimeError: teardown broke"
    assert Counter.instances[-1].live == set()
    # neither the episode that could not be set up nor the one whose score raised has a reward: None, not 0
    assert trajs["0:2"].turns and trajs["0:2"].metadata["environment"]["score_error"] == "RuntimeError: scorer broke"
    for eid in ("0:1", "0:2"):
        assert trajs[eid].reward is None and set(trajs[eid].metadata["reward_error"]) == {"env:count"}
    assert all(trajs[eid].reward is not None for eid in ("0:0", "0:3"))
    assert summary["reward_errors"] == 2 and summary["reward"]["n"] == 2


@pytest.mark.slow
def test_an_engine_failure_still_tears_the_environment_down(loop, tmp_path):
    from agentroll.engines.registry import make_engine

    Counter.instances.clear()
    dead = make_engine("vllm://127.0.0.1:9")  # nothing listens on the discard port
    config = _config(tmp_path).model_copy(
        update={"episode": _config(tmp_path).episode.model_copy(update={"timeout_s": 10})}
    )
    summary = loop.run(run(config, tmp_path / "run", engine=dead, progress=False))
    loop.run(dead.aclose())
    trajs = [Trajectory.from_dict(r) for r in read_records(Path(summary["trajectories"]))]
    assert {t.stop_reason for t in trajs} <= {"engine_error", "timeout"}
    assert Counter.instances[0].live == set() and len(Counter.instances[0].torn_down) == 4
