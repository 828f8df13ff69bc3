"""A stateful environment for the lifecycle tests (named in run configs as tests.agent.counter_env:Counter).

Each episode gets its own counter and its own `bump` tool over it; the episode's score is its count (or an
error, for the episodes named in `fail_score_for`). The class keeps every live episode, so a test can see
what is set up at once and that teardown left nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from agentroll.agent import ToolEnvironment
from agentroll.agent.task import Task
from agentroll.tools import Toolset
from agentroll.trajectory import Trajectory
from agentroll.types import Message, ToolSpec


class BumpTool:
    spec = ToolSpec(
        name="bump", description="Add one to the counter.", input_schema={"type": "object", "properties": {}}
    )
    timeout_s = None

    def __init__(self, state: dict[str, Any]):
        self.state = state

    async def run(self, arguments: dict) -> str:
        self.state["count"] += 1
        return f"count: {self.state['count']} (episode {self.state['episode']})"


@dataclass
class CounterEpisode(ToolEnvironment):
    state: dict[str, Any]
    owner: Counter
    tools: Toolset | None = None
    messages: Sequence[Message] | None = None

    async def score(self, task: Task, traj: Trajectory) -> dict[str, float]:
        if self.state["episode"] in self.owner.fail_score_for:
            raise RuntimeError("scorer broke")
        return {"count": self.state["count"]}

    async def teardown(self) -> None:
        await asyncio.sleep(0)
        self.owner.live.discard(self.state["episode"])
        self.owner.torn_down.append(self.state["episode"])
        if self.owner.fail_teardown:
            raise RuntimeError("teardown broke")


@dataclass
class Counter:
    """Test environment: a counter and a `bump` tool per episode; score = the count."""

    name: str = "counter"
    max_concurrent: int | None = None
    reward_names: tuple[str, ...] = ("count",)  # what `env:NAME` rewards may name
    fail_setup_for: tuple[str, ...] = ()
    fail_score_for: tuple[str, ...] = ()  # episodes whose score raises
    fail_teardown: bool = False
    live: set[str] = field(default_factory=set)
    torn_down: list[str] = field(default_factory=list)
    peak: int = 0
    instances: ClassVar[list[Counter]] = []

    def __post_init__(self) -> None:
        Counter.instances.append(self)

    async def setup(self, task: Task, episode_id: str) -> CounterEpisode:
        if episode_id in self.fail_setup_for:
            raise RuntimeError(f"no counter for {episode_id}")
        await asyncio.sleep(0.01)  # let concurrent setups overlap
        state = {"count": 0, "episode": episode_id}
        self.live.add(episode_id)
        self.peak = max(self.peak, len(self.live))
        return CounterEpisode(state=state, owner=self, tools=Toolset([BumpTool(state)]))
