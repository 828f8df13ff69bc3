"""The orchestration workload P2 and P3 share: the real loop, renderer, tokenizer and tool, an instant engine.

Completions are realistic model outputs (GSM8K-style reasoning, then a calculator call in the
template's own `<tool_call>` format, or a final answer), encoded once with the real SmolLM2
tokenizer, ending with `<|im_end|>` as a sampled turn does. They are not sampled from the model:
the 135M model rarely writes a well-formed call, and the loop's cost depends on the tokens' count
and shape, not on who wrote them. Each turn is 150-230 tokens.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentroll.agent import EpisodeConfig, Task, run_episode
from agentroll.engines.replay import ReplayEngine
from agentroll.renderers import get_renderer
from agentroll.rollout.gcpolicy import fewer_gc_passes
from agentroll.tools import Toolset, make_builtin
from agentroll.trajectory import Completion, Trajectory
from agentroll.types import Message, SamplingParams

RENDERER = "smollm2"
SYSTEM = "You are a careful math tutor. Use the calculator tool for every computation, then give the answer."
QUESTION = (
    "A bakery sells 3 dozen muffins every morning and half as many in the afternoon. Each muffin costs $2.50. "
    "How much money does the bakery make from muffins in a 5-day week?"
)

# (reasoning before the call, calculator expression): one per tool-call turn, cycled.
_CALL_TURNS = [
    (
        "Let me work through this step by step. The bakery sells 3 dozen muffins every morning. A dozen is 12 "
        "muffins, so in the morning it sells 3 times 12 muffins. In the afternoon it sells half as many as in the "
        "morning, which means the afternoon count is the morning count divided by 2. To find the number of muffins "
        "sold in one whole day I need to add the morning and afternoon counts together. I will write this as one "
        "expression so that the calculator gives me the daily total directly, and then I can use that number for "
        "the money and for the whole week. It is easy to make a small slip with the halves, so I will not do this "
        "in my head.",
        "3 * 12 + (3 * 12) / 2",
    ),
    (
        "The calculator says the bakery sells 54 muffins in one day: 36 in the morning and 18 in the afternoon, "
        "which matches my estimate because 18 is exactly half of 36. Each muffin costs $2.50, so the money made in "
        "one day is the number of muffins times the price of one muffin. Multiplying by a decimal price is where "
        "mistakes usually creep in, so I will ask the calculator again instead of rounding anything. After this "
        "step I will still need to account for the number of days in the week that the bakery is open, which the "
        "question says is 5 days.",
        "54 * 2.50",
    ),
    (
        "One day of muffin sales brings in $135.00. The question asks about a 5-day week, and the bakery sells the "
        "same number of muffins every day, both in the morning and in the afternoon, at the same price. So the "
        "weekly income is the daily income multiplied by the number of days. I will compute it with the tool to be "
        "certain, and then double check the result against a rough estimate: about 50 muffins a day at about $2.50 "
        "is about $125 a day, so a week should come to a little more than $600.",
        "135.0 * 5",
    ),
    (
        "Before I answer, let me verify the whole chain in a single expression, starting again from the counts in "
        "the question: morning muffins are 3 dozen, afternoon muffins are half of that, the price is $2.50 per "
        "muffin and there are 5 days in the week. If this combined expression gives the same value as the step by "
        "step calculation, then I can be confident that no step was dropped or applied twice along the way.",
        "(3 * 12 + 3 * 12 / 2) * 2.50 * 5",
    ),
]
_FINAL = (
    "The combined calculation agrees with the step by step one. Here is the full solution.\n\n"
    "1. Morning sales: 3 dozen muffins is 3 x 12 = 36 muffins.\n"
    "2. Afternoon sales: half as many as the morning, 36 / 2 = 18 muffins.\n"
    "3. Muffins per day: 36 + 18 = 54 muffins.\n"
    "4. Money per day: 54 muffins x $2.50 = $135.00.\n"
    "5. Money per week: $135.00 x 5 days = $675.00.\n\n"
    "A quick sanity check: about 50 muffins a day at about $2.50 each is roughly $125 a day, or about $625 in "
    "five days, and our exact figure of $675 is close to that estimate, slightly higher because the bakery sells "
    "54 muffins rather than 50. So the bakery makes $675 from muffins in a 5-day week.\n\n#### 675"
)


def _call_text(reasoning: str, expression: str) -> str:
    # The template's own call layout: content, newline, then the call on its own lines.
    arguments = json.dumps({"expression": expression})
    return f'{reasoning}\n<tool_call>\n{{"name": "calculator", "arguments": {arguments}}}\n</tool_call><|im_end|>'


@functools.cache
def script(tool_turns: int) -> tuple[Completion, ...]:
    """`tool_turns` calculator-call turns, then the final answer, as the real tokenizer encodes them."""
    tok = get_renderer(RENDERER).tokenizer
    calls = [tok.encode(_call_text(*_CALL_TURNS[i % len(_CALL_TURNS)])) for i in range(tool_turns)]
    return tuple(Completion(token_ids=ids) for ids in [*calls, tok.encode(_FINAL + "<|im_end|>")])


def task(i: int) -> Task:
    """Task i: its own prompt text, so no render of one episode can be reused by another."""
    messages = (Message(role="system", content=SYSTEM), Message(role="user", content=f"Problem {i}. {QUESTION}"))
    return Task(id=f"t{i}", messages=messages)


def episode_config(tool_turns: int, check: str = "end") -> EpisodeConfig:
    """Long enough for every scripted turn; `check` is the loop's check_prefix ("end" is its default)."""
    return EpisodeConfig(
        sampling=SamplingParams(max_tokens=512),
        max_turns=tool_turns + 1,
        max_episode_tokens=1_000_000,
        check_prefix=check,
    )


@dataclass(slots=True)
class Timed:
    """What one engine saw: when each episode's generate calls arrived (perf_counter seconds)."""

    arrivals: dict[str, list[float]] = field(default_factory=dict)


class TimedReplay(ReplayEngine):
    """The instant engine, also noting when each call of each session arrives (for per-turn costs)."""

    def __init__(self, script: Any, timed: Timed):
        super().__init__(script)
        self._timed = timed

    async def generate(self, prompt_ids: Any, sampling: SamplingParams, **kw: Any) -> Completion:
        self._timed.arrivals.setdefault(kw.get("session_id"), []).append(time.perf_counter())
        return await super().generate(prompt_ids, sampling, **kw)


async def run_episodes(
    n: int,
    concurrency: int,
    tool_turns: int,
    *,
    check: str = "end",
    engine: ReplayEngine | None = None,
    on_done: Callable[[Trajectory], None] | None = None,
) -> tuple[list[Trajectory], float]:
    """`n` episodes, `concurrency` at a time, on this thread's event loop; (trajectories, wall seconds).

    As the runner does: GC passes as in a run (rollout.gcpolicy); with `on_done`, each finished episode
    goes there and is let go (a run streams them to disk) instead of piling up in the returned list."""
    renderer = get_renderer(RENDERER)
    engine = engine or ReplayEngine(script(tool_turns))
    config = episode_config(tool_turns, check)
    toolset = Toolset([make_builtin("calculator")], max_concurrency=max(64, concurrency))
    pending = iter(range(n))
    done: list[Trajectory] = []

    keep = on_done or done.append

    async def worker() -> None:
        for i in pending:
            keep(
                await run_episode(
                    task(i), engine=engine, renderer=renderer, toolset=toolset, config=config, episode_id=f"e{i}"
                )
            )

    with fewer_gc_passes():
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done, time.perf_counter() - started
