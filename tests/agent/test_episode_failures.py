"""How an episode ends when something other than the model goes wrong: each is a recorded stop reason or
note, and the tokens already sampled stay as they were. Real smollm2 renderer and calculator tool; the
engine is ReplayEngine (it answers with these token IDs, as a recorded run would)."""

from __future__ import annotations

import asyncio

from agentroll.agent import EpisodeConfig, Stop, Task, run_episode
from agentroll.engines.replay import ReplayEngine
from agentroll.errors import RenderError
from agentroll.renderers import get_renderer
from agentroll.tools import Toolset, make_builtin
from agentroll.trajectory import Completion
from agentroll.types import Message, SamplingParams

TASK = Task(id="t", messages=(Message(role="user", content="What is 6 * 7?"),))
RENDERER = get_renderer("smollm2")
END = RENDERER.stop_token_ids()[0]


def _call(expression: str) -> str:
    return f'<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{expression}"}}}}\n</tool_call>'


def _ids(text: str) -> list[int]:
    return [*RENDERER.tokenizer.encode(text), END]


def _play(script, renderer=RENDERER, environment=None, **config):
    async def go():
        async with Toolset([make_builtin("calculator")]) as toolset:
            return await run_episode(
                TASK,
                engine=ReplayEngine(script),
                renderer=renderer,
                toolset=toolset,
                config=EpisodeConfig(sampling=SamplingParams(max_tokens=200), **config),
                environment=environment,
            )

    return asyncio.run(go())


def test_a_generation_the_engine_aborted_stops_the_episode_with_its_tokens_kept():
    cut = RENDERER.tokenizer.encode(_call("6 * 7"))[:9]  # a call cut off midway
    traj = _play([Completion(cut, finish_reason="abort")])
    assert traj.stop_reason == Stop.ENGINE_ERROR and "aborted" in traj.metadata["error"]
    seg = traj.segments[0]
    assert seg.token_ids[-len(cut) :] == cut and seg.loss_mask[-len(cut) :] == [1] * len(cut)  # no bridge after it
    assert traj.tool_results == []  # nothing of the cut-off turn ran


def test_a_prefix_check_that_fails_is_noted_and_the_episode_is_kept():
    class CheckFails:
        """The real renderer, except that its canonical re-render fails (as a strict template can)."""

        def __getattr__(self, name):
            return getattr(RENDERER, name)

        def check_prefix(self, *args):
            raise RenderError("template raised: tool call left unanswered")

    traj = _play([_ids(_call("6 * 7")), _ids("42")], renderer=CheckFails())
    assert traj.stop_reason == Stop.DONE and len(traj.turns) == 2
    assert traj.metadata["prefix_check"].startswith("failed: RenderError")
    assert sum(traj.segments[0].loss_mask) == sum(len(t.sampled_ids) for t in traj.turns)


def test_an_environment_that_raises_is_a_recorded_stop():
    class Broken:
        async def respond(self, task, messages, results):
            raise KeyError("user simulator lost its state")

    traj = _play([_ids(_call("6 * 7"))], environment=Broken())
    assert traj.stop_reason == Stop.ENVIRONMENT_ERROR
    assert traj.metadata["error"].startswith("environment: KeyError") and len(traj.turns) == 1


def test_without_parallel_calls_the_calls_not_run_are_answered_so_none_is_left_open():
    two = _ids(_call("6 * 7") + "\n" + _call("6 + 7"))
    traj = _play([two, _ids("42")], parallel_tool_calls=False)
    first, second = traj.tool_results
    assert not first.is_error and "42" in first.content
    assert second.is_error and second.metadata["status"] == "skipped" and "Not run" in second.content
    assert traj.stop_reason == Stop.DONE and traj.metadata["drift"] == []  # the bridge renders both answers
    stopping = _play([two, _ids("42")], parallel_tool_calls=False, on_tool_error="stop")
    assert stopping.stop_reason == Stop.DONE  # a call answered "not run" is not a tool that failed
