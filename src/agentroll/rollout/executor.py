"""Where episodes run. The runner owns the run directory; an executor only plays episodes.

An executor takes the pending (task, sample) pairs and hands each finished Trajectory to the runner's
`record(task, traj) -> bool` callback, which scores it, writes it and counts it (False: the episode was
already written, so this result was dropped). `LocalExecutor` (the default) plays them on this event loop;
`agentroll.rollout.ray_executor.RayExecutor` plays them on Ray actors.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from agentroll.agent import EpisodeConfig, Stop, Task, run_episode
from agentroll.agent.env_registry import make_environment
from agentroll.agent.lifecycle import (
    EnvironmentFactory,
    RunScoped,
    SetupFailed,
    UsesPolicyEngine,
    concurrency_limit,
    episode_env,
    finish,
    reward_names,
)
from agentroll.agent.rewards import check_environment_rewards
from agentroll.engines.base import Engine
from agentroll.errors import AgentrollError, ConfigError, EpisodePreempted
from agentroll.rollout.config import RunConfig
from agentroll.rollout.gcpolicy import fewer_gc_passes
from agentroll.rollout.staleness import within_staleness
from agentroll.trajectory import Trajectory

Record = Callable[[Task, Trajectory], bool]
Gate = Callable[[Task], Awaitable[None]]  # awaited with each task before its episode starts
MAX_RESTARTS = 3  # weight updates that may restart one episode (on_weight_update_abort=restart_episode)


def episode_id(task_id: str, sample_index: int) -> str:
    return f"{task_id}:{sample_index}"


class Executor(Protocol):
    """Plays episodes somewhere. `start` is not counted against throughput (engine loading, worker start)."""

    async def start(self, has_work: bool) -> None: ...

    async def run(self, pending: list[tuple[Task, int]], record: Record) -> None: ...

    def summary(self) -> dict[str, Any]:
        """Extra keys for summary.json (empty for the local executor)."""
        ...

    async def aclose(self) -> None: ...


class LocalExecutor:
    """`config.concurrency` asyncio workers on this loop share one engine and one toolset.

    `engine` / `toolset` / `environments` override what the config names (the caller keeps ownership: they are
    not closed; started `environments` let a trainer that runs once per step keep e.g. a user model loaded).
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        engine: Any = None,
        toolset: Any = None,
        gate: Gate | None = None,
        environments: Environments | None = None,
    ):
        self.config = config
        self.engine, self.toolset, self.environments = engine, toolset, environments
        self._own_engine, self._own_tools, self._own_envs = engine is None, toolset is None, environments is None
        self.gate = gate  # awaited before each episode starts (a stream holds workers back while batches wait)

    async def start(self, has_work: bool) -> None:
        self.engine = self.engine or build_engine(self.config)
        self.toolset = self.toolset or build_toolset(self.config)
        self.environments = self.environments or Environments.of(self.config, self.engine)
        if self._own_tools:
            await self.toolset.start()
        if has_work:  # start the engine before the clock: throughput is about episodes, not model loading
            await self.engine.health()
            if self._own_envs:
                await self.environments.start()

    async def run(self, pending: list[tuple[Task, int]], record: Record) -> None:
        from agentroll.renderers import get_renderer

        renderer = get_renderer(self.config.renderer)
        queue: Iterator[tuple[Task, int]] = iter(pending)

        config = self.config

        async def worker() -> None:
            for task, sample in queue:  # one shared iterator: each pair is taken by exactly one worker
                if self.gate is not None:
                    await self.gate(task)

                def play(task: Task = task, sample: int = sample) -> Awaitable[Trajectory]:
                    return play_episode(task, sample, config, self.engine, renderer, self.toolset, self.environments)

                record(task, await within_staleness(play, self.engine, config.max_staleness, config.on_stale))

        # A TaskGroup: an error that stops the run (a ConfigError, a bug) cancels the other workers, so none
        # goes on writing after the run has ended; their unfinished episodes are simply not on disk yet.
        with fewer_gc_passes():
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(self.config.concurrency, len(pending))):
                        group.create_task(worker())
            except BaseExceptionGroup as group_error:  # the error that stopped the run, as callers expect it
                raise group_error.exceptions[0] from None

    def summary(self) -> dict[str, Any]:
        return {}

    async def aclose(self) -> None:
        if self._own_envs and self.environments is not None:
            await self.environments.aclose()
        if self._own_tools and self.toolset is not None:
            await self.toolset.aclose()
        if self._own_engine and self.engine is not None:
            await self.engine.aclose()


@dataclass
class Environments:
    """The run's environment factory and its cap on episodes set up at once (made on the playing loop)."""

    factory: EnvironmentFactory
    limit: asyncio.Semaphore | None

    @classmethod
    def of(cls, config: RunConfig, engine: Engine | None = None) -> Environments:
        from agentroll.renderers import get_renderer

        factory = make_environment(config.environment, **config.environment_options)
        check_environment_rewards(config.rewards, config.environment, reward_names(factory))  # before any episode
        if engine is not None and isinstance(factory, UsesPolicyEngine):
            factory.use_engine(engine, get_renderer(config.renderer))
        return cls(factory, concurrency_limit(factory))

    async def start(self) -> None:
        """Before the first episode: what the factory holds for the whole run (e.g. a simulated user's engine)."""
        if isinstance(self.factory, RunScoped):
            await self.factory.start()

    async def aclose(self) -> None:
        if isinstance(self.factory, RunScoped):
            await self.factory.aclose()


async def play_episode(
    task: Task,
    sample: int,
    config: RunConfig,
    engine: Any,
    renderer: Any,
    toolset: Any,
    environments: Environments | None = None,
    *,
    eid: str | None = None,
) -> Trajectory:
    """One episode in its own environment (set up, played, scored by it, torn down), unscored by the run; a
    failure the loop did not turn into a stop reason is still recorded, not raised. `eid` (default
    `task:sample`) names the episode and seeds it: a trainer whose groups repeat a task gives each its own."""
    if environments is None:  # one episode on its own (an integration, a test): the factory lives as long as it
        environments = Environments.of(config, engine)
        await environments.start()
        try:
            return await play_episode(task, sample, config, engine, renderer, toolset, environments, eid=eid)
        finally:
            await environments.aclose()
    eid, envs = eid or episode_id(task.id, sample), environments
    try:
        for restart in range(MAX_RESTARTS + 1):
            try:
                async with episode_env(envs.factory, task, eid, limit=envs.limit) as session:
                    traj = await run_episode(
                        session.task,
                        engine=engine,
                        renderer=renderer,
                        toolset=session.tools or toolset,
                        config=seeded(config.episode, eid),
                        episode_id=eid,
                        sample_index=sample,
                        environment=session,
                    )
                    await finish(session, traj)
            except SetupFailed as e:
                return _failed(task, sample, eid, Stop.ENVIRONMENT_ERROR, str(e))  # names the cause's type and text
            except EpisodePreempted:  # on_weight_update_abort=restart_episode: play it again on the new weights
                if restart == MAX_RESTARTS:
                    raise
                continue
            if restart:
                traj.metadata["restarts"] = restart
            return traj
        raise AssertionError("unreachable")
    except ConfigError:
        raise  # every episode would fail the same way: stop the run
    except AgentrollError as e:
        return _failed(task, sample, eid, "error", f"{type(e).__name__}: {e}")


def _failed(task: Task, sample: int, eid: str, stop: str, error: str) -> Trajectory:
    return Trajectory(
        id=eid, task_id=task.id, sample_index=sample, messages=list(task.messages), stop_reason=stop,
        metadata={"error": error},
    )  # fmt: skip


def seeded(episode: EpisodeConfig, eid: str) -> EpisodeConfig:
    """A seeded run gives each episode its own seed (else all n samples of a task would be identical)."""
    base = episode.sampling.seed
    if base is None:
        return episode
    seed = (base + zlib.crc32(eid.encode())) % (1 << 31)
    return episode.model_copy(update={"sampling": episode.sampling.model_copy(update={"seed": seed})})


def build_engine(config: RunConfig) -> Any:
    from agentroll.engines.registry import make_engine

    return make_engine(config.engine)


def build_toolset(config: RunConfig) -> Any:
    from agentroll.tools import Toolset, load_toolset, make_builtin

    if isinstance(config.tools, str):
        return load_toolset(config.resolve(config.tools))
    return Toolset([make_builtin(name) for name in config.tools])
