"""The instant engine: replays recorded completions per session, and still behaves like an engine."""

from __future__ import annotations

import asyncio

import pytest

from agentroll.engines.base import Engine
from agentroll.engines.replay import ReplayEngine
from agentroll.errors import ConfigError, ContextOverflow
from agentroll.trajectory import Completion, Trajectory, Turn
from agentroll.types import SamplingParams

SP = SamplingParams(max_tokens=16)


def run(coro):
    return asyncio.run(coro)


def test_replay_engine_satisfies_the_engine_protocol():
    assert isinstance(ReplayEngine([[1, 2]]), Engine)


def test_each_session_replays_the_script_from_its_first_completion():
    engine = ReplayEngine([[1, 2], [3, 4]])

    async def calls():
        a1 = await engine.generate([0], SP, session_id="a")
        b1 = await engine.generate([0], SP, session_id="b")
        a2 = await engine.generate([0], SP, session_id="a")
        a3 = await engine.generate([0], SP, session_id="a")  # past the end: the last one again
        return a1, b1, a2, a3

    a1, b1, a2, a3 = run(calls())
    assert (a1.token_ids, b1.token_ids, a2.token_ids, a3.token_ids) == ([1, 2], [1, 2], [3, 4], [3, 4])
    assert engine.calls == 4


def test_replay_stops_at_the_first_requested_stop_token_and_keeps_it():
    engine = ReplayEngine([Completion([5, 6, 7, 8], logprobs=[-0.1, -0.2, -0.3, -0.4], finish_reason="length")])
    c = run(engine.generate([0], SamplingParams(max_tokens=16, stop_token_ids=(7,))))
    assert (c.token_ids, c.logprobs, c.finish_reason) == ([5, 6, 7], [-0.1, -0.2, -0.3], "stop")


def test_replay_cuts_at_max_tokens_with_finish_reason_length():
    engine = ReplayEngine([[5, 6, 7, 8]])
    c = run(engine.generate([0], SamplingParams(max_tokens=2)))
    assert (c.token_ids, c.finish_reason) == ([5, 6], "length")


def test_replay_never_sends_a_prompt_that_cannot_fit():
    engine = ReplayEngine([[1]], max_model_len=20)
    with pytest.raises(ContextOverflow):
        run(engine.generate(list(range(10)), SamplingParams(max_tokens=11)))


def test_replayed_completions_are_copies_the_caller_may_keep():
    engine = ReplayEngine([[1, 2]])
    first = run(engine.generate([0], SP, session_id="a"))
    first.token_ids.append(99)
    assert run(engine.generate([0], SP, session_id="b")).token_ids == [1, 2]


def test_a_recorded_trajectory_replays_its_sampled_turns_with_logprobs():
    turns = [
        Turn(index=i, segment=0, prompt_len=3, sampled_ids=ids, logprobs=lps, top_logprobs=None, finish_reason="stop")
        for i, (ids, lps) in enumerate([([1, 2], [-1.0, -2.0]), ([3], [-3.0])])
    ]
    engine = ReplayEngine.from_trajectory(Trajectory(id="t", turns=turns))
    first, second = run(engine.generate([0], SP, session_id="x")), run(engine.generate([0], SP, session_id="x"))
    assert (first.token_ids, first.logprobs, second.token_ids, second.logprobs) == ([1, 2], [-1.0, -2.0], [3], [-3.0])


def test_an_empty_script_is_a_config_error():
    with pytest.raises(ConfigError):
        ReplayEngine([])
