"""The episode loop against the real embedded engine (vLLM on CPU, SmolLM2-135M) and real tools."""

from __future__ import annotations

import uuid

import pytest

from agentroll.agent import EpisodeConfig, Stop, Task, run_episode
from agentroll.engines.registry import make_engine
from agentroll.renderers import get_renderer
from agentroll.tools import Toolset
from agentroll.types import Message, SamplingParams, ToolSpec
from tests.conftest import needs_vllm

pytestmark = [pytest.mark.slow, needs_vllm]


class StampTool:
    """Returns a fresh random stamp the prompt never showed: only a real call can put it in the trajectory.

    Its schema accepts any object, so whatever arguments the 135M model writes, the call runs.
    """

    spec = ToolSpec(
        name="lookup",
        description="Look a key up in the registry.",
        input_schema={"type": "object", "properties": {"key": {"type": "string"}}},
    )
    timeout_s = None

    def __init__(self) -> None:
        self.stamps: list[str] = []

    async def run(self, arguments: dict) -> str:
        self.stamps.append(uuid.uuid4().hex[:12])
        return f"value: {self.stamps[-1]}"


TASK = Task(
    id="lookup-1",
    messages=(
        Message(role="system", content="Use the lookup tool to answer."),
        Message(role="user", content="What is the value of key 'alpha'?"),
    ),
)


def _config(**kw) -> EpisodeConfig:
    # Stop right after a call: the 135M model rambles on after </tool_call> otherwise.
    sampling = SamplingParams(max_tokens=64, temperature=0.8, seed=7, logprobs=1, stop=("</tool_call>",))
    return EpisodeConfig(**{"sampling": sampling, "max_turns": 2, **kw})


def _episode(loop, engine, config, task=TASK, environment=None):
    async def go():
        async with Toolset([StampTool()]) as toolset:
            renderer = get_renderer("smollm2")
            return await run_episode(
                task, engine=engine, renderer=renderer, toolset=toolset, config=config, environment=environment
            )

    return loop.run(go())


def test_tool_output_tokens_are_never_trained(loop, embedded):
    traj = _episode(loop, embedded, _config(tool_choice="lookup"))
    renderer = get_renderer("smollm2")
    assert traj.tool_results and not traj.tool_results[0].is_error, (traj.stop_reason, traj.turns)
    stamp = traj.tool_results[0].content.rsplit(": ", 1)[1]
    seg = traj.segments[0]
    text_of = renderer.tokenizer.decode
    # Find the stamp in the token stream: every token covering it is rendered by us (mask 0).
    first_turn = traj.turns[0]
    bridge_start = first_turn.prompt_len + len(first_turn.sampled_ids)
    bridge = seg.token_ids[bridge_start : bridge_start + first_turn.bridge_len]
    assert stamp in text_of(bridge)
    assert seg.loss_mask[bridge_start : bridge_start + first_turn.bridge_len] == [0] * first_turn.bridge_len
    assert stamp not in text_of(seg.token_ids[:bridge_start])  # the model never saw it before the call


def test_mask_and_logprobs_are_set_where_tokens_are_produced(loop, embedded):
    traj = _episode(loop, embedded, _config(tool_choice="lookup"))
    for seg in traj.segments:
        assert len(seg.token_ids) == len(seg.loss_mask) == len(seg.logprobs)
        assert all((lp is None) == (m == 0) for lp, m in zip(seg.logprobs, seg.loss_mask, strict=True))
    seg = traj.segments[0]
    for turn in traj.turns:
        start = turn.prompt_len  # the prompt sent, forced call opener included
        assert seg.token_ids[start : start + len(turn.sampled_ids)] == turn.sampled_ids
        assert seg.loss_mask[start : start + len(turn.sampled_ids)] == [1] * len(turn.sampled_ids)
        assert seg.logprobs[start : start + len(turn.sampled_ids)] == turn.logprobs


def test_real_episode_has_no_drift_against_the_canonical_render(loop, embedded):
    traj = _episode(loop, embedded, _config(tool_choice="lookup", max_turns=3))
    assert traj.metadata["drift"] == []
    assert len(traj.turns) >= 2 and len(traj.segments) == 1


def test_turn_cut_by_max_tokens_stops_with_length(loop, embedded):
    traj = _episode(loop, embedded, _config(sampling=SamplingParams(max_tokens=3, seed=1, logprobs=0)))
    assert traj.stop_reason == Stop.LENGTH
    assert traj.turns[-1].finish_reason == "length" and len(traj.turns[-1].sampled_ids) == 3


def test_max_turns_ends_a_tool_loop(loop, embedded):
    traj = _episode(loop, embedded, _config(tool_choice="lookup", max_turns=2))
    assert traj.stop_reason == Stop.MAX_TURNS and len(traj.turns) == 2


def test_tool_choice_turns_forces_only_the_first_turns(loop, embedded):
    traj = _episode(loop, embedded, _config(tool_choice="lookup", tool_choice_turns=1, max_turns=3))
    assert traj.turns[0].meta["forced_prefix_len"] > 0 and traj.tool_results  # the first turn had to call
    assert len(traj.turns) >= 2 and all("forced_prefix_len" not in t.meta for t in traj.turns[1:])


class StrictStampTool(StampTool):
    spec = ToolSpec(
        name="lookup",
        description="Look a key up in the registry.",
        input_schema={
            "type": "object",
            "properties": {"key": {"type": "string", "enum": ["alpha", "beta"]}, "version": {"type": "integer"}},
            "required": ["key", "version"],
            "additionalProperties": False,
        },
    )


def test_guided_tool_choice_makes_a_valid_call_and_marks_its_tokens_constrained(loop, embedded):
    """tool_choice_enforcement guided: every first turn is a schema-valid call (the opener alone lets the
    135M model write any JSON), its sampled tokens are marked constrained, in the trajectory and the export."""
    from agentroll.export.rows import segment_rows, split_row

    config = _config(tool_choice="lookup", tool_choice_turns=1, tool_choice_enforcement="guided", max_turns=2,
                     sampling=SamplingParams(max_tokens=96, temperature=1.0, seed=3, logprobs=0))  # fmt: skip

    async def go(seed):
        async with Toolset([StrictStampTool()]) as toolset:
            c = config.model_copy(update={"sampling": config.sampling.model_copy(update={"seed": seed})})
            return await run_episode(TASK, engine=embedded, renderer=get_renderer("smollm2"), toolset=toolset, config=c)

    trajs = loop.run(_gather([go(seed) for seed in range(6)]))
    for traj in trajs:
        first = traj.turns[0]
        assert [c.status for c in first.tool_calls] == ["ok"], first.tool_calls
        assert first.tool_calls[0].call.arguments["key"] in ("alpha", "beta")
        assert first.constrained == "tool_call" and all(t.constrained is None for t in traj.turns[1:])
        row = segment_rows(traj)[0]
        start, n = first.prompt_len, len(first.sampled_ids)
        assert row["constrained_mask"][start : start + n] == [1] * n
        assert sum(row["constrained_mask"]) == n  # only that turn
        assert sum(split_row(row, logprob_fill=0.0)["response_constrained_mask"]) == n
        assert traj.metadata["drift"] == []  # the constrained call renders back as sampled


async def _gather(coros):
    import asyncio

    return await asyncio.gather(*coros)


def test_context_overflow_is_never_sent(loop, embedded):
    config = _config(sampling=SamplingParams(max_tokens=embedded.max_model_len))
    traj = _episode(loop, embedded, config)
    assert traj.stop_reason == Stop.CONTEXT_OVERFLOW and traj.turns == []


def test_dead_engine_is_a_recorded_stop_not_a_crash(loop):
    dead = make_engine("vllm://127.0.0.1:9")  # nothing listens on the discard port
    traj = _episode(loop, dead, _config(timeout_s=20))
    loop.run(dead.aclose())
    assert traj.stop_reason in (Stop.ENGINE_ERROR, Stop.TIMEOUT)
    assert "error" in traj.metadata and traj.turns == []


class FollowUpUser:
    """A simulated user: after the model's first answer without a tool call, asks one more question."""

    def __init__(self) -> None:
        self.asked = False

    async def respond(self, task, messages, results):
        if results:
            return [r.to_message() for r in results]
        if self.asked:
            return None
        self.asked = True
        return [Message(role="user", content="Thanks. Now say the word 'done'.")]


def test_a_simulated_user_continues_the_episode_token_exactly(loop, embedded):
    task = Task(id="chat-1", messages=(Message(role="user", content="Reply with one word: hello."),))
    sampling = SamplingParams(max_tokens=96, temperature=0.0, logprobs=1)
    config = _config(sampling=sampling, max_turns=3, tool_choice="none")  # plain chat: no tools rendered
    traj = _episode(loop, embedded, config, task=task, environment=FollowUpUser())
    assert traj.turns[0].finish_reason == "stop", traj.turns[0]
    assert traj.messages[2].role == "user" and traj.messages[2].content.startswith("Thanks. Now say")
    turn, seg = traj.turns[0], traj.segments[-1]
    bridge = seg.token_ids[turn.prompt_len + len(turn.sampled_ids) :][: turn.bridge_len]
    assert "Thanks. Now say the word" in get_renderer("smollm2").tokenizer.decode(bridge)
    assert len(traj.turns) == 2 and traj.metadata["drift"] == []
