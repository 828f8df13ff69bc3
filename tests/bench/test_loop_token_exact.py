"""The loop's hot path keeps tokens exact: against the instant engine, with the real SmolLM2 renderer and
calculator tool, an episode's tokens are the canonical full render of its messages, with no drift."""

from __future__ import annotations

import asyncio

from agentroll.agent import run_episode
from agentroll.bench import workload
from agentroll.engines.replay import ReplayEngine
from agentroll.renderers import get_renderer
from agentroll.tools import Toolset, make_builtin


def _episode(tool_turns: int, check: str):
    async def go():
        return await run_episode(
            workload.task(7),
            engine=ReplayEngine(workload.script(tool_turns)),
            renderer=get_renderer(workload.RENDERER),
            toolset=Toolset([make_builtin("calculator")]),
            config=workload.episode_config(tool_turns, check),
            episode_id="exact",
        )

    return asyncio.run(go())


def test_instant_engine_episode_equals_the_canonical_full_render_of_its_messages():
    traj = _episode(5, "every_turn")
    renderer = get_renderer(workload.RENDERER)
    (segment,) = traj.segments
    canonical = renderer.render(traj.messages, renderer_tools(), add_generation_prompt=False)
    closing = renderer.tokenizer.encode("\n")  # the template's text after the last <|im_end|>, never sampled
    assert traj.stop_reason == "done" and len(traj.turns) == 6
    assert canonical == segment.token_ids + closing
    assert traj.metadata["drift"] == []


def test_every_sampled_token_is_trained_and_every_rendered_one_is_not():
    traj = _episode(3, "end")
    (segment,) = traj.segments
    sampled = [t for turn in traj.turns for t in turn.sampled_ids]
    assert [t for t, m in zip(segment.token_ids, segment.loss_mask, strict=True) if m == 1] == sampled
    assert [r.content for r in traj.tool_results] == ["54.0", "135.0", "675.0"]  # the calculator really ran


def test_per_turn_prompt_is_the_whole_context_so_far():
    traj = _episode(3, "off")
    (segment,) = traj.segments
    for turn, nxt in zip(traj.turns, traj.turns[1:], strict=False):
        assert nxt.prompt_len == turn.prompt_len + len(turn.sampled_ids) + turn.bridge_len
    assert traj.turns[-1].prompt_len + len(traj.turns[-1].sampled_ids) == len(segment)


def renderer_tools():
    return Toolset([make_builtin("calculator")]).specs()
