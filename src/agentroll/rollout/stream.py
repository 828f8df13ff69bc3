"""A rollout stream for online RL: the trainer pulls groups of episodes as they finish.

    async with Rollouts(config, Path("runs/online"), engine=engine) as rollouts:
        while batch := await rollouts.next_batch(groups=8):      # 8 tasks x samples_per_task episodes
            state_dict = train_step(batch)
            await rollouts.update_weights(state_dict, version=step)

This is `agentroll run` (rollout.runner.run: one run directory, resume, rewards, progress, staleness)
in a background task, with two hooks. Each episode, once durable on disk, joins its task's group; a
group is ready when all `samples_per_task` episodes are in (GRPO groups are never split), and groups
are handed out in the order they complete. Before an episode starts (the gate), a group that is already
open always goes on; a new group opens only while fewer than `wanted + buffer_groups` groups are open
(started, not yet handed out), where `wanted` is what a waiting `next_batch` asks for. `buffer_groups`
defaults to the last batch size: while the trainer waits, two batches' worth of groups run, so
stragglers do not hold a batch up (over-subscription), and while it trains, one batch is prepared.
`buffer_groups=0` is on-policy: a batch's groups all start after it was asked for, on the weights
current then. `concurrency` bounds the episodes in flight; `max_staleness` / `on_stale` (the run
config) bound how old a delivered episode's tokens may be.

A killed stream resumes with `resume=True`: episodes on disk are not run again; groups that were complete
on disk are not handed out again (the trainer had them, or reads them from RUN_DIR/trajectories.jsonl);
a group that was partly on disk is completed and handed out whole.
"""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import Any

from agentroll.agent import Task
from agentroll.engines.base import Engine, WeightUpdatable
from agentroll.engines.weights import PauseMode, WeightSource, WeightUpdate
from agentroll.errors import ConfigError
from agentroll.rollout.config import RunConfig
from agentroll.rollout.executor import build_engine
from agentroll.rollout.runner import run
from agentroll.rollout.store import TRAJECTORIES, read_records
from agentroll.trajectory import Trajectory

Group = list[Trajectory]  # the samples_per_task episodes of one task, by sample index


class Rollouts:
    """`agentroll run` as a stream of complete groups; see the module doc."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        *,
        engine: Engine | None = None,
        toolset: Any = None,
        resume: bool = False,
        overwrite: bool = False,
        buffer_groups: int | None = None,
        progress: bool = False,
    ):
        self.config, self.run_dir = config, Path(run_dir)
        self.engine = engine
        self._own_engine = engine is None
        self.toolset, self.resume, self.overwrite, self.progress = toolset, resume, overwrite, progress
        self.buffer_groups = buffer_groups
        self.summary: dict[str, Any] | None = None  # the run's summary once the dataset is done
        self._partial: dict[str, Group] = {}
        self._open: set[str] = set()  # task IDs of the groups started and not yet handed out
        self._ready: deque[Group] = deque()
        self._wanted = self._last_batch = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Rollouts:
        self.engine = self.engine or build_engine(self.config)
        if self.resume:
            self._partial = _partial_groups(self.run_dir, self.config.samples_per_task)
            self._open = set(self._partial)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()  # unfinished episodes are not on disk: a resume runs them
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._own_engine and self.engine is not None:
            await self.engine.aclose()

    async def next_batch(self, groups: int) -> list[Group]:
        """The next `groups` complete groups (fewer at the end of the dataset; [] when it is done)."""
        if groups < 1:
            raise ConfigError(f"next_batch: groups must be >= 1, not {groups}")
        self._wanted, self._last_batch = groups, groups
        self._notify()  # workers waiting at the gate may go on
        await self._wait_until(lambda: len(self._ready) >= groups or self._task.done())
        self._wanted = 0
        if self._task.done() and self._task.exception() is not None:
            raise self._task.exception()
        batch = [self._ready.popleft() for _ in range(min(groups, len(self._ready)))]
        self._open.difference_update(g[0].task_id for g in batch)
        self._notify()
        return batch

    @property
    def policy_version(self) -> int:
        return self.engine.policy_version if isinstance(self.engine, WeightUpdatable) else 0

    async def update_weights(self, source: WeightSource, *, version: int, mode: PauseMode = "keep") -> WeightUpdate:
        """New weights for the engine the stream samples with (episodes in flight are handled by `mode`)."""
        if not isinstance(self.engine, WeightUpdatable):
            raise ConfigError(f"engine {getattr(self.engine, 'name', self.engine)!r} cannot take new weights")
        return await self.engine.update_weights(source, version=version, mode=mode)

    async def _run(self) -> None:
        try:
            self.summary = await run(
                self.config, self.run_dir, resume=self.resume, overwrite=self.overwrite, progress=self.progress,
                engine=self.engine, toolset=self.toolset, on_recorded=self._recorded, gate=self._gate,
            )  # fmt: skip
        finally:
            self._notify()

    def _recorded(self, task: Task, traj: Trajectory) -> None:
        group = self._partial.setdefault(task.id, [])
        group.append(traj)
        if len(group) == self.config.samples_per_task:
            self._ready.append(sorted(self._partial.pop(task.id), key=lambda t: t.sample_index))
            self._notify()

    async def _gate(self, task: Task) -> None:
        """Before an episode starts: its group goes on if it is open, else waits until a group may open."""

        def room() -> bool:
            ahead = self._last_batch if self.buffer_groups is None else self.buffer_groups
            return task.id in self._open or len(self._open) < self._wanted + ahead

        await self._wait_until(room)
        self._open.add(task.id)

    async def _wait_until(self, ready: Any) -> None:
        while not ready():
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def _partial_groups(run_dir: Path, samples_per_task: int) -> dict[str, Group]:
    """The groups a killed stream left partly on disk (complete ones were handed out before)."""
    path = run_dir / TRAJECTORIES
    if not path.exists():
        return {}
    partial: dict[str, Group] = {}
    for record in read_records(path):
        group = partial.setdefault(record["task_id"], [])
        group.append(Trajectory.from_dict(record))
        if len(group) == samples_per_task:
            del partial[record["task_id"]]
    return partial
