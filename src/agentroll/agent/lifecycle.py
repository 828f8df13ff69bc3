"""Per-episode environments: set up before an episode's first turn, torn down after its last, whatever the
stop reason (a timeout, a crash, a cancelled run included).

An `EnvironmentFactory` (one per run, named in the run config: `environment: NAME`) sets up an `EpisodeEnv`
for each episode. The episode env may bring its own tools (a fresh object, a working directory, a sandbox
session: `tools`, started and closed with it), its own first messages (`messages`), answers each turn
(`respond`, as environment.py's Environment) and scores the finished episode (`score`: reward components,
which a run's rewards name as `env:NAME`). Setup and teardown are timed into the trajectory's metadata
(`environment`); a failed setup is the episode's recorded stop reason (`environment_error`), a failed
teardown or score is recorded beside the episode, and neither stops the run. `max_concurrent` caps how many
episodes of a factory are set up at once (at most N sandboxes). A factory that holds something for the
whole run (an engine of its own) is `RunScoped`: started before the first episode, closed after the last.

    async with episode_env(factory, task, episode_id, limit=limit) as session:
        traj = await run_episode(session.task, ..., toolset=session.tools or toolset, environment=session)
        await finish(session, traj)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agentroll.agent.environment import ToolEnvironment
from agentroll.agent.task import Task
from agentroll.engines.base import Engine
from agentroll.renderers.base import Renderer
from agentroll.tools import Toolset
from agentroll.trajectory import Trajectory
from agentroll.types import Message, ToolResult


@runtime_checkable
class EpisodeEnv(Protocol):
    """One episode's environment state."""

    tools: Toolset | None  # this episode's own tools; None: the run's shared toolset
    messages: Sequence[Message] | None  # the episode's first messages; None: the task's

    async def respond(
        self, task: Task, messages: Sequence[Message], results: Sequence[ToolResult]
    ) -> list[Message] | None: ...

    async def score(self, task: Task, traj: Trajectory) -> dict[str, float]: ...

    async def teardown(self) -> None: ...


@runtime_checkable
class EnvironmentFactory(Protocol):
    """Sets up one EpisodeEnv per episode. A factory whose episodes score components declares their names in
    `reward_names` (a class or instance attribute, optional so that older factories still load): a run that
    names an `env:NAME` reward its factory does not declare stops at its start (rewards.check_environment_rewards)."""

    name: str
    max_concurrent: int | None  # episodes set up at once (None: no limit beyond the run's concurrency)

    async def setup(self, task: Task, episode_id: str) -> EpisodeEnv: ...


@runtime_checkable
class UsesPolicyEngine(Protocol):
    """A factory that may also generate with the run's own engine and renderer (e.g. a simulated user played by
    the policy model): the run hands them over before the first episode."""

    def use_engine(self, engine: Engine, renderer: Renderer) -> None: ...


@runtime_checkable
class RunScoped(Protocol):
    """A factory that holds something for the whole run (e.g. an engine of its own): `start` once before the
    first episode, `aclose` after the last, on every process that plays episodes (each Ray worker too).
    `aclose` must be safe to call when `start` did not run or failed."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class ToolEpisode(ToolEnvironment):
    """The default episode env: the run's shared tools, results back to the model, no score of its own."""

    tools: Toolset | None = None
    messages: Sequence[Message] | None = None

    async def score(self, task: Task, traj: Trajectory) -> dict[str, float]:
        return {}

    async def teardown(self) -> None:
        return None


@dataclass
class ToolsEnvironment:
    """`environment: tools` (the default): what every run did before per-episode environments existed."""

    name: str = "tools"
    max_concurrent: int | None = None
    reward_names: tuple[str, ...] = ()  # it scores nothing of its own

    async def setup(self, task: Task, episode_id: str) -> EpisodeEnv:
        return ToolEpisode()


class SetupFailed(Exception):
    """The environment could not be set up for this episode (the cause is chained)."""


@dataclass
class Session:
    """What `episode_env` yields: the episode env, the task it sees, and what setup and teardown cost. It is
    what the episode loop's `environment` is (its `respond` is the env's)."""

    env: EpisodeEnv
    task: Task
    timings: dict[str, Any] = field(default_factory=dict)

    @property
    def tools(self) -> Toolset | None:
        return self.env.tools

    async def respond(
        self, task: Task, messages: Sequence[Message], results: Sequence[ToolResult]
    ) -> list[Message] | None:
        return await self.env.respond(task, messages, results)


@asynccontextmanager
async def episode_env(
    factory: EnvironmentFactory,
    task: Task,
    episode_id: str,
    *,
    limit: asyncio.Semaphore | None = None,
    setup_timeout_s: float | None = 120.0,
) -> AsyncIterator[Session]:
    """Set up `factory` for one episode (under `limit`: the run's cap on episodes set up at once), yield it,
    and tear it down whatever happens: the env's teardown, then its own tools closed.

    Raises SetupFailed when setup fails or times out (what was set up is torn down)."""
    async with limit if limit is not None else _nothing():
        started = time.monotonic()
        env: EpisodeEnv | None = None
        try:
            env = await asyncio.wait_for(factory.setup(task, episode_id), setup_timeout_s)
            if env.tools is not None:
                await env.tools.start()
        except Exception as e:
            if env is not None:
                await _teardown(env, {})
            raise SetupFailed(f"{factory.name}: setup failed: {type(e).__name__}: {e}") from e
        session = Session(env, _with_messages(task, env), {"name": factory.name})
        session.timings["setup_s"] = round(time.monotonic() - started, 4)
        try:
            yield session
        finally:
            await asyncio.shield(_teardown(env, session.timings))  # a cancelled episode is torn down too


async def _teardown(env: EpisodeEnv, timings: dict[str, Any]) -> None:
    started = time.monotonic()
    try:
        await env.teardown()
    except Exception as e:  # recorded beside the episode; the run goes on
        timings["teardown_error"] = f"{type(e).__name__}: {e}"
    if env.tools is not None:
        try:
            await env.tools.aclose()
        except Exception as e:
            timings["teardown_error"] = f"tools: {type(e).__name__}: {e}"
    timings["teardown_s"] = round(time.monotonic() - started, 4)


def concurrency_limit(factory: EnvironmentFactory) -> asyncio.Semaphore | None:
    """The run's cap on the factory's episodes set up at once (make it on the loop that plays them)."""
    return asyncio.Semaphore(factory.max_concurrent) if factory.max_concurrent else None


async def finish(session: Session, traj: Trajectory) -> None:
    """Score the episode with its environment (components in metadata `environment_rewards`, read by the
    `env:NAME` rewards) and record the environment's timings. A failing score is recorded, not raised: the
    episode gets no `environment_rewards` and `environment.score_error`, so its `env:` rewards are None."""
    try:
        scored = await session.env.score(session.task, traj)
        traj.metadata["environment_rewards"] = {k: float(v) for k, v in scored.items()}
    except Exception as e:
        traj.metadata.pop("environment_rewards", None)
        session.timings["score_error"] = f"{type(e).__name__}: {e}"
    traj.metadata["environment"] = session.timings


def reward_names(factory: EnvironmentFactory) -> frozenset[str] | None:
    """The components a factory's episodes score (`env:NAME` rewards), from its optional `reward_names`; None
    when it declares none (an older factory: its `env:` rewards cannot be checked before the run)."""
    declared = getattr(factory, "reward_names", None)
    return None if declared is None else frozenset(declared)


def _with_messages(task: Task, env: EpisodeEnv) -> Task:
    return task if env.messages is None else task.model_copy(update={"messages": tuple(env.messages)})


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
