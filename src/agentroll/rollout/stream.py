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

Delivery is recorded in RUN_DIR/delivered.jsonl (`Ledger`). A batch counts as delivered when the trainer
is done with it: when it calls `next_batch` again, leaves the `async with` without an exception, or calls
`acknowledge()`. A killed stream resumes with `resume=True`: episodes on disk are not run again, groups
acknowledged (or dropped) before are not handed out again, every other complete group on disk is handed
out (the batch the trainer was training on when it died comes again), and a group that was partly on
disk is completed and handed out whole.

`drop_uniform_groups=True`: a group whose rewards are all equal (GRPO advantages all zero) is not handed
out; it stays in trajectories.jsonl, is recorded as dropped and counted, and its slot opens a new group,
so batches stay full while the dataset lasts. A group with a reward of None (a scorer that failed) is
never judged uniform: it is handed out, and the trainer decides.
"""

from __future__ import annotations

import asyncio
import json
import os
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
from agentroll.rollout.store import SUMMARY, TRAJECTORIES, read_records, write_json
from agentroll.rollout.versions import (
    WEIGHTS,
    WeightKeeper,
    clear_versions,
    engine_model_dir,
    read_versions,
    write_versions,
)
from agentroll.trajectory import Trajectory

Group = list[Trajectory]  # the samples_per_task episodes of one task, by sample index
DELIVERED = "delivered.jsonl"
# Rewards closer than this carry no GRPO signal: the group's advantages are (r - mean) / (std + eps) ~ 0.
UNIFORM_SPREAD = 1e-6


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
        drop_uniform_groups: bool = False,
        progress: bool = False,
    ):
        if drop_uniform_groups and config.samples_per_task < 2:
            raise ConfigError("drop_uniform_groups: needs samples_per_task >= 2 (a group of one is always uniform)")
        self.config, self.run_dir = config, Path(run_dir)
        self.engine = engine
        self._own_engine = engine is None
        self.toolset, self.resume, self.overwrite, self.progress = toolset, resume, overwrite, progress
        self.buffer_groups, self.drop_uniform_groups = buffer_groups, drop_uniform_groups
        self.summary: dict[str, Any] | None = None  # the run's summary once the dataset is done
        self.ledger = Ledger(self.run_dir / DELIVERED)
        self._partial: dict[str, Group] = {}
        self._open: set[str] = set()  # task IDs of the groups started and not yet handed out (nor dropped)
        self._ready: deque[Group] = deque()
        self._handed: list[Group] = []  # the last batch handed out, not yet acknowledged
        self._wanted = self._last_batch = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._keeper: WeightKeeper | None = None  # made on the first weight update

    async def __aenter__(self) -> Rollouts:
        self.engine = self.engine or build_engine(self.config)
        if self.resume:
            self.ledger.load(self.config.samples_per_task)
            self._partial, complete = _undelivered_groups(self.run_dir, self.config.samples_per_task, self.ledger)
            self._open = set(self._partial) | {g[0].task_id for g in complete}
            for group in complete:  # in the order they completed; a drop a kill cut short is recorded now
                self._complete(group)
        elif self.overwrite or not (self.run_dir / TRAJECTORIES).exists():
            self.ledger.clear()  # a fresh run: what an earlier run delivered says nothing about this one
            clear_versions(self.run_dir)  # nor which weights it saw
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.acknowledge()  # left normally: the trainer is done with the last batch
        if self._task is not None and not self._task.done():
            self._task.cancel()  # unfinished episodes are not on disk: a resume runs them
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._own_engine and self.engine is not None:
            await self.engine.aclose()

    async def next_batch(self, groups: int) -> list[Group]:
        """The next `groups` complete groups (fewer at the end of the dataset; [] when it is done).

        Calling it acknowledges the batch it returned last (see `acknowledge`)."""
        if groups < 1:
            raise ConfigError(f"next_batch: groups must be >= 1, not {groups}")
        self.acknowledge()
        self._wanted, self._last_batch = groups, groups
        self._notify()  # workers waiting at the gate may go on
        await self._wait_until(lambda: len(self._ready) >= groups or self._task.done())
        self._wanted = 0
        if self._task.done() and self._task.exception() is not None:
            raise self._task.exception()
        batch = [self._ready.popleft() for _ in range(min(groups, len(self._ready)))]
        self._open.difference_update(g[0].task_id for g in batch)
        self._handed = batch
        self._notify()
        return batch

    def acknowledge(self) -> None:
        """The trainer is done with the last batch (its step is taken, or checkpointed): record it as delivered
        (fsynced), so a resume does not hand it out again. Until then a kill means it comes again."""
        if self._handed:
            self.ledger.delivered(self._handed)
            self._handed = []

    @property
    def stats(self) -> dict[str, int]:
        """Groups delivered (acknowledged), dropped and handed out but not yet acknowledged, over the whole run."""
        return {**self.ledger.counts, "unacknowledged_groups": len(self._handed)}

    @property
    def policy_version(self) -> int:
        return self.engine.policy_version if isinstance(self.engine, WeightUpdatable) else 0

    async def update_weights(self, source: WeightSource, *, version: int, mode: PauseMode = "keep") -> WeightUpdate:
        """New weights for the engine the stream samples with (episodes in flight are handled by `mode`)."""
        if not isinstance(self.engine, WeightUpdatable):
            raise ConfigError(f"engine {getattr(self.engine, 'name', self.engine)!r} cannot take new weights")
        if self._keeper is None:  # what each version's weights were, for `agentroll verify` (rollout/versions.py)
            await self.engine.models()  # a server names its model folder once asked
            keeper = WeightKeeper(self.run_dir / WEIGHTS, keep=self.config.keep_versions,
                                  model_dir=engine_model_dir(self.engine))  # fmt: skip
            keeper.versions.update(read_versions(self.run_dir))
            await asyncio.to_thread(keeper.start, self.engine.policy_version)
            self._keeper = keeper
        update = await self.engine.update_weights(source, version=version, mode=mode)
        await asyncio.to_thread(self._keeper.add, version, source)  # before the trainer's next step changes them
        write_versions(self.run_dir, self._keeper.versions)
        return update

    async def _run(self) -> None:
        try:
            summary = await run(
                self.config, self.run_dir, resume=self.resume, overwrite=self.overwrite, progress=self.progress,
                engine=self.engine, toolset=self.toolset, on_recorded=self._recorded, gate=self._gate,
            )  # fmt: skip
            # every group is complete (and judged) once the run returns: its drop count is final
            summary["stream"] = {
                "drop_uniform_groups": self.drop_uniform_groups,
                "dropped_uniform_groups": self.ledger.counts["dropped_uniform_groups"],
            }
            write_json(self.run_dir / SUMMARY, summary)
            self.summary = summary
        finally:
            self._notify()

    def _recorded(self, task: Task, traj: Trajectory) -> None:
        group = self._partial.setdefault(task.id, [])
        group.append(traj)
        if len(group) == self.config.samples_per_task:
            self._complete(sorted(self._partial.pop(task.id), key=lambda t: t.sample_index))

    def _complete(self, group: Group) -> None:
        """A whole group: ready for the trainer, or dropped (recorded at once) with its slot given to a new one."""
        if self.drop_uniform_groups and uniform_rewards(group):
            self.ledger.dropped(group, "uniform_reward")
            self._open.discard(group[0].task_id)
        else:
            self._ready.append(group)
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


def uniform_rewards(group: Group) -> bool:
    """All rewards are numbers within UNIFORM_SPREAD of each other. A None reward (the scorer failed) is not a
    value equal to the others: such a group is never uniform."""
    rewards_G = [t.reward for t in group]
    if any(r is None for r in rewards_G):
        return False
    return max(rewards_G) - min(rewards_G) <= UNIFORM_SPREAD


class Ledger:
    """RUN_DIR/delivered.jsonl: one fsynced line per acknowledged batch, and per dropped group.

        {"event": "delivered", "batch": 0, "groups": [{"task_id": "3", "episode_ids": ["3:0", "3:1"],
                                                       "rewards": [1.0, 0.0]}, ...]}
        {"event": "dropped", "reason": "uniform_reward", "groups": [{"task_id": "5", ...}]}

    A batch is one line, so a kill mid-write loses the whole acknowledgement (the batch comes again), never half.
    """

    def __init__(self, path: Path):
        self.path = path
        self.closed: set[str] = set()  # task IDs delivered or dropped: never handed out again
        self.counts = {"delivered_batches": 0, "delivered_groups": 0, "dropped_uniform_groups": 0, "unscored_groups": 0}

    def load(self, samples_per_task: int) -> None:
        """Read what an earlier process recorded (a torn last line is cut off: that event did not happen)."""
        if not self.path.exists():
            return
        for record in read_records(self.path, repair=True):
            for g in record["groups"]:
                if len(g["episode_ids"]) != samples_per_task:
                    raise ConfigError(
                        f"{self.path}: group {g['task_id']} was {record['event']} with {len(g['episode_ids'])} "
                        f"episodes; resume this stream with samples_per_task {len(g['episode_ids'])}"
                    )
            self._count(record)

    def delivered(self, batch: list[Group]) -> None:
        self._append({"event": "delivered", "batch": self.counts["delivered_batches"], "groups": _describe(batch)})

    def dropped(self, group: Group, reason: str) -> None:
        self._append({"event": "dropped", "reason": reason, "groups": _describe([group])})

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def _append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as f:
            f.write(json.dumps(record).encode("utf-8") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self._count(record)

    def _count(self, record: dict[str, Any]) -> None:
        groups = record["groups"]
        self.closed.update(g["task_id"] for g in groups)
        if record["event"] == "delivered":
            self.counts["delivered_batches"] += 1
            self.counts["delivered_groups"] += len(groups)
            self.counts["unscored_groups"] += sum(None in g["rewards"] for g in groups)
        else:
            self.counts["dropped_uniform_groups"] += len(groups)


def _describe(groups: list[Group]) -> list[dict[str, Any]]:
    return [
        {"task_id": g[0].task_id, "episode_ids": [t.id for t in g], "rewards": [t.reward for t in g]} for g in groups
    ]


def _undelivered_groups(run_dir: Path, samples_per_task: int, ledger: Ledger) -> tuple[dict[str, Group], list[Group]]:
    """What a killed stream left on disk and never delivered: partial groups, and complete groups in the order
    they completed (those a trainer was handed but did not acknowledge, and those nobody was handed yet)."""
    path = run_dir / TRAJECTORIES
    partial: dict[str, Group] = {}
    complete: list[Group] = []
    if not path.exists():
        return partial, complete
    for record in read_records(path):
        if record["task_id"] in ledger.closed:
            continue
        group = partial.setdefault(record["task_id"], [])
        group.append(Trajectory.from_dict(record))
        if len(group) == samples_per_task:
            complete.append(sorted(partial.pop(record["task_id"]), key=lambda t: t.sample_index))
    return partial, complete
