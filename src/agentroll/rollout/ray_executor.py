"""Episodes on Ray actors: `agentroll run CONFIG --ray [ADDRESS]`.

Each worker is a Ray actor with its own asyncio loop, engine client (built from the config's engine
spec), renderer and toolset; it plays several episodes at once (config.concurrency split across
workers) and returns each as `Trajectory.to_dict()`. The driver (this process) keeps the run directory:
it scores, appends and counts every result (runner.Recorder), so a run is exactly-once by episode ID.

A worker that dies (RayActorError on its calls) is replaced by a fresh actor, and the episodes it had
in flight run again first, each alone on a worker (Ledger: suspects). A worker that hangs
(alive, but its event loop answers nothing: a stopped process, a C call that never returns, a tool that
blocks the loop) is found by a heartbeat: a ping that gets no answer within `hang_timeout_s` has the
actor killed, and from there it is a dead worker like any other. summary.json says how many were re-run.
`max_staleness` is refused: a worker's engine client does not see weight updates made elsewhere, so it
cannot measure staleness (docs/online_rl.md). Ray is imported only here, and only when a RayExecutor starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agentroll.agent import Task
from agentroll.errors import ConfigError, ExecutorError
from agentroll.rollout.config import RunConfig
from agentroll.rollout.executor import Environments, Record, build_engine, build_toolset, episode_id, play_episode
from agentroll.rollout.gcpolicy import use_run_threshold
from agentroll.trajectory import Trajectory

LOCAL_OBJECT_STORE_BYTES = 200 * 2**20  # results are small JSON dicts; Ray's default (30% of RAM) is far more
READY_TIMEOUT_S = 900.0  # a worker on the embedded engine loads a model first
HANG_TIMEOUT_S = 120.0  # a ping waits behind at most one loop turn; this is far past any healthy one
_NO_STALENESS = (
    "max_staleness is not enforced on Ray, so it is refused: a worker's engine client cannot see weight updates "
    "made elsewhere (its policy_version counts only its own), so it cannot tell how stale an episode is. Bound "
    "staleness with the local executor or the stream (agentroll.rollout.stream), or remove max_staleness"
)


@dataclass(slots=True)
class Ledger:
    """Where each pending episode is: queued, or in flight on a named worker. Results are settled here.

    An episode whose worker died becomes a suspect: it may have killed it, or only have shared it with
    the one that did. Suspects run again first, each alone on a worker (`take` gives a worker with a
    suspect nothing else, and a busy worker no suspect), so a later death is pinned on the one episode
    that was running. An episode in flight at `max_attempts` deaths is given up (`lost`): one episode
    that kills its worker every time cannot use up every replacement, nor take its neighbours with it.
    """

    queue: deque[str]
    in_flight: dict[str, str] = field(default_factory=dict)  # episode ID -> worker name
    reruns: list[str] = field(default_factory=list)
    max_attempts: int = 3
    suspects: deque[str] = field(default_factory=deque)
    deaths: dict[str, int] = field(default_factory=dict)  # episode ID -> deaths while it was in flight
    alone: dict[str, str] = field(default_factory=dict)  # worker name -> the suspect it runs alone
    lost: list[str] = field(default_factory=list)

    def take(self, worker: str, busy: int = 0) -> str | None:
        """The next episode for `worker` (running `busy` episodes now), or None."""
        if worker in self.alone:
            return None
        if self.suspects:  # suspects first, each alone: a busy worker takes nothing new until it drains
            if busy:
                return None
            eid = self.suspects.popleft()
            self.alone[worker] = eid
        elif self.queue:
            eid = self.queue.popleft()
        else:
            return None
        self.in_flight[eid] = worker
        return eid

    def settle(self, eid: str) -> None:
        worker = self.in_flight.pop(eid, None)
        if worker is not None and self.alone.get(worker) == eid:
            del self.alone[worker]

    def requeue(self, eid: str) -> bool:
        """Its worker died before answering: run it again, as a suspect. False when it is given up
        instead (settled; the caller records it)."""
        worker = self.in_flight.get(eid)
        if worker is None:
            return True  # settled already: a late report of a death changes nothing
        self.settle(eid)
        self.deaths[eid] = self.deaths.get(eid, 0) + 1
        if self.deaths[eid] >= self.max_attempts:
            self.lost.append(eid)
            return False
        self.suspects.append(eid)
        self.reruns.append(eid)
        return True

    @property
    def complete(self) -> bool:
        return not self.queue and not self.suspects and not self.in_flight


class EpisodeWorker:
    """The body of one Ray actor (made remote at start, so importing this module needs no Ray)."""

    def __init__(self, config: dict[str, Any], name: str):
        self.config = RunConfig.model_validate(config)
        self.name = name
        self.engine: Any = None
        self.toolset: Any = None
        self.renderer: Any = None
        self.environments: Any = None

    async def ready(self) -> int:
        """Build and start the engine client and tools on this actor's loop; returns the actor's PID."""
        from agentroll.renderers import get_renderer

        self.renderer = get_renderer(self.config.renderer)
        self.engine = build_engine(self.config)
        self.toolset = build_toolset(self.config)
        self.environments = Environments.of(self.config, self.engine)
        await self.toolset.start()
        await self.engine.health()
        await self.environments.start()  # e.g. a simulated user's own engine: one per worker, for the whole run
        use_run_threshold()  # this process only runs episodes (gcpolicy.py)
        return os.getpid()

    async def ping(self) -> int:
        """Answered on the actor's event loop: no answer means the loop is stuck."""
        return os.getpid()

    async def play(self, task: dict[str, Any], sample: int) -> dict[str, Any]:
        t = Task.model_validate(task)
        traj = await play_episode(t, sample, self.config, self.engine, self.renderer, self.toolset, self.environments)
        traj.metadata["ray_worker"] = self.name
        return traj.to_dict()

    async def close(self) -> None:
        if self.environments is not None:
            await self.environments.aclose()
        if self.toolset is not None:
            await self.toolset.aclose()
        if self.engine is not None:
            await self.engine.aclose()


@dataclass(slots=True)
class _Worker:
    index: int
    capacity: int  # episodes in flight on it
    handle: Any = None
    pid: int | None = None
    generation: int = 0  # +1 per replacement: calls of an older generation no longer count here
    alive: bool = False
    in_flight: int = 0

    @property
    def name(self) -> str:
        return f"ray-{self.index}.{self.generation}"


class RayExecutor:
    """Plays episodes on `workers` Ray actors. `address`: None or "local" starts a local Ray instance,
    anything else is passed to `ray.init(address=...)` ("auto", "HOST:6379", "ray://HOST:10001").
    If Ray is already initialized in this process, that cluster is used and left running."""

    def __init__(
        self,
        config: RunConfig,
        *,
        address: str | None = None,
        workers: int = 2,
        cpus_per_worker: float = 0.5,
        max_restarts: int | None = None,
        hang_timeout_s: float | None = HANG_TIMEOUT_S,
    ):
        if workers < 1:
            raise ConfigError("--ray-workers must be at least 1")
        if config.max_staleness is not None:
            raise ConfigError(_NO_STALENESS)
        if any(part.strip().startswith("embedded") for part in config.engine.split(",")):
            warnings.warn(
                f"engine {config.engine!r} on Ray: each of the {workers} workers loads its own copy of the model; "
                "a shared server (vllm://HOST:PORT, or a pool of them) is what Ray workers are meant to use",
                stacklevel=2,
            )
        self.config, self.address, self.cpus_per_worker = config, address, cpus_per_worker
        share, extra = divmod(config.concurrency, workers)
        self.workers = [_Worker(i, max(1, share + (i < extra))) for i in range(workers)]
        self.max_restarts = 3 * workers if max_restarts is None else max_restarts
        self.hang_timeout_s = hang_timeout_s
        self.restarts = 0
        self.hung = 0
        self.duplicates = 0
        self.ledger = Ledger(deque())
        self._revivals: dict[asyncio.Future, _Worker] = {}
        self._actor_cls: Any = None
        self._owns_ray = False

    async def start(self, has_work: bool) -> None:
        if not has_work:  # a finished run being resumed: nothing to start
            return
        import ray

        if not ray.is_initialized():
            self._init_ray(ray)
        self._actor_cls = ray.remote(EpisodeWorker)
        await asyncio.gather(*(self._spawn(w) for w in self.workers))

    def _init_ray(self, ray: Any) -> None:
        local = self.address in (None, "local")
        if not local:
            _check_reachable(self.address)
        try:
            if local:
                need = self.cpus_per_worker * len(self.workers) + 1  # + the replacement of a dead worker
                ray.init(
                    address="local",
                    num_cpus=max(os.cpu_count() or 1, int(need + 0.999)),
                    object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                    include_dashboard=False,
                    log_to_driver=False,  # stdout is the run's report; worker failures come back as errors
                )
            else:
                ray.init(address=self.address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            hint = "" if local else " (a cluster with token auth, Ray's default, needs RAY_AUTH_MODE=token here)"
            raise ExecutorError(f"could not start or reach Ray ({self.address or 'local'}): {e}{hint}") from e
        self._owns_ray = True

    async def _spawn(self, w: _Worker) -> None:
        w.handle = self._actor_cls.options(
            num_cpus=self.cpus_per_worker,
            max_concurrency=w.capacity + 3,  # + ready/close and a ping
            max_restarts=0,  # the driver replaces a dead worker itself and knows which episodes it held
            max_task_retries=0,
            scheduling_strategy="SPREAD",
        ).remote(self.config.model_dump(mode="json"), w.name)
        w.pid = await asyncio.wait_for(_get(w.handle.ready.remote()), READY_TIMEOUT_S)
        w.alive, w.in_flight = True, 0

    async def run(self, pending: list[tuple[Task, int]], record: Record) -> None:
        by_id = {episode_id(t.id, s): (t, s) for t, s in pending}
        self.ledger = Ledger(deque(by_id))
        calls: dict[asyncio.Future, tuple[_Worker, int, str]] = {}  # -> (worker, its generation, episode ID)
        revivals = self._revivals = {}
        watchdog = asyncio.ensure_future(self._watch()) if self.hang_timeout_s else None
        try:
            while not self.ledger.complete:
                self._submit(by_id, calls)
                if not calls and not revivals:
                    left = len(self.ledger.queue) + len(self.ledger.suspects)
                    raise ExecutorError(f"every Ray worker died; {left} episodes were not run")
                done, _ = await asyncio.wait([*calls, *revivals], return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    if fut in revivals:
                        self._revived(revivals.pop(fut), fut)
                    else:
                        w, generation, eid = calls.pop(fut)
                        self._settle(fut, w, generation, by_id[eid], record)
                if watchdog is not None and watchdog.done():
                    watchdog.result()  # a bug in the watchdog stops the run instead of leaving hangs unseen
        finally:
            for fut in [*calls, *revivals, *([watchdog] if watchdog else [])]:
                fut.cancel()

    async def _watch(self) -> None:
        """Ping every live worker each `hang_timeout_s / 4`; replace one that does not answer in `hang_timeout_s`.
        Its calls then fail with RayActorError and take the dead-worker path (requeued as suspects)."""
        assert self.hang_timeout_s is not None
        while True:
            await asyncio.sleep(self.hang_timeout_s / 4)
            live = [(w, w.handle) for w in self.workers if w.alive]
            answers = await asyncio.gather(*(self._answers(handle) for _, handle in live))
            for (w, handle), ok in zip(live, answers, strict=True):
                if not ok and w.handle is handle and w.alive:  # not replaced meanwhile
                    self.hung += 1
                    warnings.warn(
                        f"Ray worker {w.name} did not answer for {self.hang_timeout_s:g}s: killed", stacklevel=2
                    )
                    self._lose(w)

    async def _answers(self, handle: Any) -> bool:
        """False only for a ping that times out; a dead actor's error is left to its calls to report."""
        try:
            await asyncio.wait_for(_get(handle.ping.remote()), self.hang_timeout_s)
        except TimeoutError:
            return False
        except Exception:
            pass
        return True

    def _submit(self, by_id: dict[str, tuple[Task, int]], calls: dict[asyncio.Future, Any]) -> None:
        """Fill every live worker up to its capacity, requeued episodes first."""
        for w in self.workers:
            while w.alive and w.in_flight < w.capacity and (eid := self.ledger.take(w.name, w.in_flight)) is not None:
                task, sample = by_id[eid]
                ref = w.handle.play.remote(task.model_dump(mode="json"), sample)
                calls[asyncio.ensure_future(_get(ref))] = (w, w.generation, eid)
                w.in_flight += 1

    def _settle(
        self,
        fut: asyncio.Future,
        w: _Worker,
        generation: int,
        job: tuple[Task, int],
        record: Record,
    ) -> None:
        """One call came back: write its episode, or requeue it (and replace the worker) if the worker died."""
        from ray.exceptions import RayActorError

        current = generation == w.generation  # calls of a replaced worker no longer count against it
        if current:
            w.in_flight -= 1
        task, sample = job
        error = fut.exception()
        if isinstance(error, RayActorError):
            if not self.ledger.requeue(episode_id(task.id, sample)):
                record(task, _lost(task, sample, self.ledger.max_attempts, error))
            if current and w.alive:  # the first failed call of this worker
                self._lose(w)
            return
        if error is not None:
            raise error  # a ConfigError from the episode, or a bug: stop the run
        self.ledger.settle(episode_id(task.id, sample))
        if not record(task, Trajectory.from_dict(fut.result())):
            self.duplicates += 1

    def _lose(self, w: _Worker) -> None:
        """Stop sending `w` work and replace it (the replacement kills the old actor first); the calls
        still out on it fail with RayActorError, and their episodes are requeued as they do."""
        self._revivals[asyncio.ensure_future(self._revive(w, w.handle))] = w
        w.alive, w.generation, w.in_flight = False, w.generation + 1, 0

    async def _revive(self, w: _Worker, dead: Any) -> None:
        """Replace a dead worker; its episodes were requeued by the calls that failed."""
        _kill(dead)
        if self.restarts >= self.max_restarts:
            raise ExecutorError(f"worker {w.index} died and the restart budget ({self.max_restarts}) is spent")
        self.restarts += 1
        await self._spawn(w)

    def _revived(self, w: _Worker, fut: asyncio.Future) -> None:
        error = fut.exception()
        if error is not None:  # the replacement did not come up: run on with the others
            w.alive = False
            warnings.warn(f"Ray worker {w.index} is gone: {error}", stacklevel=2)

    def summary(self) -> dict[str, Any]:
        return {
            "executor": "ray",
            "ray_workers": len(self.workers),
            "worker_restarts": self.restarts,
            "hung_workers": self.hung,
            "rerun_episodes": len(self.ledger.reruns),
            "rerun_ids": sorted(set(self.ledger.reruns)),
            "lost_ids": sorted(self.ledger.lost),
            "duplicates_dropped": self.duplicates,
        }

    def worker_pids(self) -> list[int]:
        """PIDs of the live workers' actor processes (what a test kills)."""
        return [w.pid for w in self.workers if w.alive and w.pid is not None]

    async def aclose(self) -> None:
        if self._actor_cls is None:
            return
        import ray

        live = [w for w in self.workers if w.alive]
        closing = [_get(w.handle.close.remote()) for w in live]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), 30)
        for w in self.workers:
            with contextlib.suppress(Exception):
                ray.kill(w.handle, no_restart=True)
            w.alive = False
        if self._owns_ray:
            ray.shutdown()


async def _get(ref: Any) -> Any:
    return await ref


def _lost(task: Task, sample: int, attempts: int, error: BaseException) -> Trajectory:
    """The record of an episode given up: every worker that ran it died (a tool that kills its process...)."""
    return Trajectory(
        id=episode_id(task.id, sample),
        task_id=task.id,
        sample_index=sample,
        messages=list(task.messages),
        stop_reason="error",
        metadata={"error": f"worker_lost: {attempts} Ray workers died running this episode; last: {error}"},
    )


def _kill(handle: Any) -> None:
    import ray

    with contextlib.suppress(Exception):
        ray.kill(handle, no_restart=True)


def _check_reachable(address: str) -> None:
    """Fail fast on a HOST:PORT nothing listens on (ray.init would retry it for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return  # "auto", "ray://...": Ray resolves these itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ExecutorError(f"no Ray cluster at {address}: {e}") from e
