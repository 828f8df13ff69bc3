"""The simulated user: it answers from its persona and goal until it says the end marker or runs out of
replies; its words are context in the policy's trajectory (mask 0), its cost is reported apart. Played on a
replay engine (exact tokens) and on the embedded engine (the example config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentroll.engines.replay import ReplayEngine
from agentroll.environments.simulated_user import SimulatedUser, UserEpisode
from agentroll.renderers import get_renderer
from agentroll.rollout.config import load_config
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
