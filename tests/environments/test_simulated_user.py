"""The simulated user: it answers from its persona and goal until it says the end marker or runs out of
replies; its words are context in the policy's trajectory (mask 0), its cost is reported apart. By default
the run's engine and renderer play it; `user_engine` gives it an engine of its own that keeps its weights
when the policy's change. Played on a replay engine (exact tokens) and on the embedded engine."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from agentroll.engines.replay import ReplayEngine
from agentroll.environments.simulated_user import SimulatedUser, UserEpisode
from agentroll.errors import ConfigError
from agentroll.renderers import get_renderer
from agentroll.rollout.config import load_config
from agentroll.rollout.executor import LocalExecutor
from agentroll.rollout.runner import run
from agentroll.rollout.store import read_records
from agentroll.trajectory import Trajectory
from agentroll.types import Message

RENDERER = get_renderer("smollm2")
END = RENDERER.stop_token_ids()[0]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _ids(text: str) -> list[int]:
    return [*RENDERER.tokenizer.encode(text), END]


def _trajs(summary) -> list[Trajectory]:
    return [Trajectory.from_dict(r) for r in read_records(Path(summary["trajectories"]))]


def test_the_user_sees_the_conversation_from_its_side():
    ep = UserEpisode(SimulatedUser(), persona="a baker", goal="know 6 * 7", episode_id="e")
    seen = ep._as_user_sees_it([
        Message(role="system", content="policy prompt"), Message(role="user", content="hi"),
        Message(role="assistant", content="How can I help?"), Message(role="user", content="6 * 7?"),
    ])  # fmt: skip
    assert [m.role for m in seen] == ["system", "assistant", "user", "assistant"]
    assert "a baker" in seen[0].content and "know 6 * 7" in seen[0].content and "[DONE]" in seen[0].content
    assert [m.content for m in seen[1:]] == ["hi", "How can I help?", "6 * 7?"]


def test_the_users_words_are_context_not_policy_tokens_and_its_cost_is_apart(loop, tmp_path):
    # One script for every session: the policy's n-th turn and the user's n-th reply are its n-th completion.
    asked, done = _ids("What do you need?"), _ids("[DONE]")
    config = load_config(EXAMPLES / "simulated_user.yaml")
    config = config.model_copy(update={"dataset": config.dataset.model_copy(update={"limit": 1}),
                                       "samples_per_task": 1})  # fmt: skip
    (traj,) = _trajs(loop.run(run(config, tmp_path / "run", engine=ReplayEngine([asked, done]), progress=False)))
    assert traj.stop_reason == "done"
    assert [(m.role, m.content) for m in traj.messages[1:]] == [
        ("user", "Hi, I need to buy bread rolls for a party."), ("assistant", "What do you need?"),
        ("user", "What do you need?"), ("assistant", "[DONE]"),
    ]  # fmt: skip
    seg = traj.segments[0]
    sampled = [t for t, m in zip(seg.token_ids, seg.loss_mask, strict=True) if m == 1]
    assert sampled == asked + done  # the policy's two turns; the user's reply is in the bridge, mask 0
    cost = traj.metadata["simulated_user"]
    assert cost["turns"] == 2 and cost["completion_tokens"] == len(asked) + len(done) and cost["prompt_tokens"] > 0


@pytest.mark.slow
def test_the_example_config_runs_on_the_embedded_engine(loop, embedded, tmp_path):
    summary = loop.run(run(load_config(EXAMPLES / "simulated_user.yaml"), tmp_path / "run", engine=embedded,
                           progress=False), timeout=600)  # fmt: skip
    trajs = _trajs(summary)
    assert len(trajs) == 8
    replied = [t for t in trajs if t.metadata["simulated_user"]["turns"] > 0]
    assert replied  # the user model answered the policy
    for t in trajs:
        # every mask-1 token is one the policy sampled in one of its turns; the user's words are not among them
        assert sum(sum(s.loss_mask) for s in t.segments) == sum(len(turn.sampled_ids) for turn in t.turns)
        users = [m.content for m in t.messages if m.role == "user"][1:]
        assert len(users) <= t.metadata["simulated_user"]["turns"] <= 2


def test_by_default_the_user_is_rendered_and_parsed_with_the_runs_renderer(loop, tmp_path):
    # A run on Qwen2.5's renderer: the script is Qwen token IDs, which only Qwen's tokenizer reads back as the
    # words. The user's reply (its session's first completion) must come back as the same words the policy said.
    qwen = get_renderer("qwen2.5")
    asked = [*qwen.tokenizer.encode("What do you need?"), qwen.stop_token_ids()[0]]
    done = [*qwen.tokenizer.encode("[DONE]"), qwen.stop_token_ids()[0]]
    config = load_config(EXAMPLES / "simulated_user.yaml", renderer="qwen2.5", samples_per_task=1, limit=1)
    (traj,) = _trajs(loop.run(run(config, tmp_path / "run", engine=ReplayEngine([asked, done]), progress=False)))
    assert [(m.role, m.content) for m in traj.messages[1:4]] == [
        ("user", "Hi, I need to buy bread rolls for a party."), ("assistant", "What do you need?"),
        ("user", "What do you need?"),
    ]  # fmt: skip
    user = traj.metadata["simulated_user"]
    assert user["renderer"] == "qwen2.5" and user["played_by"][0]["engine"] == "policy"


def _changed_checkpoint(model_dir: Path, out: Path) -> Path:
    """The model with its final norm scaled by 1.5: every next-token distribution moves."""
    from safetensors.torch import load_file, save_file

    out.mkdir()
    for name in ("config.json", "generation_config.json"):
        shutil.copy(model_dir / name, out / name)
    tensors = load_file(str(model_dir / "model.safetensors"))
    tensors["model.norm.weight"] = tensors["model.norm.weight"] * 1.5
    save_file(tensors, str(out / "model.safetensors"))
    return out


def _own_user_config(user_engine: str, **options: Any):
    config = load_config(EXAMPLES / "simulated_user.yaml", limit=2, samples_per_task=2, concurrency=4, tools=[])
    episode = config.episode.model_copy(update={"max_turns": 3})
    options = {"user_engine": user_engine, "user_renderer": "smollm2", "max_user_turns": 1, "max_tokens": 24, **options}
    return config.model_copy(
        update={
            "episode": episode,
            "environment_options": options,
            "system_prompt": "You are a helpful assistant. Reply in one short sentence.",
        }
    )


@pytest.mark.slow
def test_a_user_on_its_own_engine_keeps_its_weights_when_the_policy_is_updated(loop, embedded, model_dir, tmp_path):
    from agentroll.engines import embedded as embedded_module

    # Settings unlike the policy's: its own model in this process (equal settings would share the policy's).
    spec = f"embedded?model={model_dir}&kv_cache_gib=1&max_model_len=1024"
    config = _own_user_config(spec)
    changed, version = _changed_checkpoint(model_dir, tmp_path / "changed"), embedded.policy_version + 1
    seen: dict[str, Any] = {}
    first = asyncio.Lock()

    async def update_the_policy_first(task: Any) -> None:  # the gate: after start, before the first episode
        async with first:
            if seen:
                return
            user = executor.environments.factory.engine_for_users()
            seen["user"], seen["policy"] = await user.weight_checksums(), await embedded.weight_checksums()
            await embedded.update_weights(changed, version=version)
            seen["user_after"], seen["policy_after"] = await user.weight_checksums(), await embedded.weight_checksums()
            seen["user_version"] = user.policy_version

    executor = LocalExecutor(config, engine=embedded, gate=update_the_policy_first)
    try:
        trajs = _trajs(loop.run(run(config, tmp_path / "run", executor=executor, progress=False), timeout=600))
    finally:
        loop.run(embedded.update_weights(model_dir, version=embedded.policy_version + 1))  # back for later tests
    assert seen["policy_after"] != seen["policy"]  # the policy took the new weights...
    assert seen["user_after"] == seen["user"] and seen["user_version"] == 0  # ...the user kept its own
    played = [p for t in trajs for p in t.metadata["simulated_user"]["played_by"]]
    assert played, "the user model never answered (every policy reply ran out of tokens?)"
    assert all(p == {"engine": spec, "model": str(model_dir), "policy_version": 0} for p in played)
    for t in trajs:
        assert {turn.policy_version for turn in t.turns} == {version}  # the policy sampled on the new weights
        # every mask-1 token is one the policy sampled; the user's words are context, its cost apart
        assert sum(sum(s.loss_mask) for s in t.segments) == sum(len(turn.sampled_ids) for turn in t.turns)
        cost = t.metadata["simulated_user"]
        assert cost["turns"] == len(cost["played_by"]) and (cost["completion_tokens"] > 0) == bool(cost["played_by"])
    assert not [s for s in embedded_module._SHARED if s.max_model_len == 1024]  # the user engine closed with the run


@pytest.mark.slow
def test_a_user_engine_that_is_the_policys_own_model_is_refused(loop, embedded, model_dir, tmp_path):
    """Equal embedded settings share one model in a process: such a user would follow the policy's updates."""
    config = _own_user_config(f"embedded?model={model_dir}&kv_cache_gib=1")  # the `embedded` fixture's settings
    executor = LocalExecutor(config, engine=embedded)
    with pytest.raises(ConfigError, match="would follow the policy's weight updates"):
        loop.run(executor.start(has_work=True))
    loop.run(executor.aclose())
    assert loop.run(embedded.health())  # the policy's model is still up


def test_a_user_engine_without_its_renderer_is_refused() -> None:
    """The run's renderer speaks the policy's vocabulary: a user model of its own would get another's token IDs."""
    from agentroll.environments.simulated_user import SimulatedUser
    from agentroll.errors import ConfigError

    with pytest.raises(ConfigError, match="needs user_renderer"):
        SimulatedUser(user_engine="vllm://127.0.0.1:9")
