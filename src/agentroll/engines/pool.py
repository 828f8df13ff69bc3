"""Several servers behind one engine: sticky per session, least-loaded, failover, health checks.

Routing (`routing=`): "sticky" (the default) keeps a session (episode) on the server that served its
first call, so that server's prefix cache holds the conversation; a new session goes to the healthy
server with the fewest in-flight requests (then fewest sessions). "least_loaded" sends every call to
the least busy server, ignoring sessions; "round_robin" sends each call to the next healthy server in
turn (the baseline the routing benchmark compares sticky routing against).

A server that fails with EngineUnavailable is taken out, and the call is re-sent to another server;
each such retry is recorded in the Completion's `meta["pool_retries"]` (it lands on the trajectory's
turn). A background check puts a server back once its health endpoint answers (unless it missed a
weight update: `update_weights` updates every server and takes out one that fails). Timeouts and
rejected requests are not retried: a request that returned (tokens or an error) is never re-sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from agentroll.engines.base import Engine
from agentroll.engines.weights import PauseMode, WeightSource, WeightUpdate, checkpoint_dir
from agentroll.errors import ConfigError, EngineUnavailable
from agentroll.trajectory import Completion
from agentroll.types import SamplingParams

T = TypeVar("T")
ROUTINGS = ("sticky", "least_loaded", "round_robin")


@dataclass(slots=True)
class Member:
    engine: Engine
    name: str
    healthy: bool = True
    in_flight: int = 0
    sessions: int = 0  # sessions currently routed here
    served: int = 0  # completed calls
    failures: int = 0
    down_since: float | None = None
    last_error: str = field(default="", repr=False)


class PoolEngine:
    name = "pool"

    def __init__(
        self,
        engines: Sequence[Engine],
        *,
        health_interval_s: float = 2.0,
        max_sessions: int = 100_000,
        routing: str = "sticky",
    ):
        if not engines:
            raise ConfigError("a pool needs at least one engine")
        if routing not in ROUTINGS:
            raise ConfigError(f"pool routing {routing!r}: expected one of {', '.join(ROUTINGS)}")
        self.routing = routing
        self.members = [Member(e, getattr(e, "base_url", f"{e.name}#{i}")) for i, e in enumerate(engines)]
        self.health_interval_s = health_interval_s
        self._sticky: OrderedDict[str, Member] = OrderedDict()
        self._max_sessions = max_sessions
        self._health_task: asyncio.Task | None = None
        self._rr = 0  # tie-breaker so equal servers take turns
        self._version = 0

    @property
    def max_model_len(self) -> int | None:
        known = [m.engine.max_model_len for m in self.members if m.engine.max_model_len is not None]
        return min(known) if known else None

    async def health(self) -> bool:
        await self._check_all()
        return any(m.healthy for m in self.members)

    async def models(self) -> list[str]:
        names: list[str] = []
        for m in self.members:
            if m.healthy:
                with contextlib.suppress(EngineUnavailable):
                    names += [n for n in await m.engine.models() if n not in names]
        return names

    async def generate(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> Completion:
        rid = request_id or uuid.uuid4().hex

        def call(m: Member, attempt: int) -> Awaitable[Completion]:
            # A fresh id per attempt: the dead server may still hold the old one.
            r = rid if attempt == 0 else f"{rid}-retry{attempt}"
            return m.engine.generate(prompt_ids, sampling, request_id=r, timeout=timeout, session_id=session_id)

        completion, member, retries = await self._route(session_id, call)
        completion.meta["pool_server"] = member.name
        completion.meta["pool_retries"] = retries
        return completion

    async def prompt_logprobs(self, token_ids: Sequence[int], *, session_id: str | None = None) -> list[float | None]:
        def call(m: Member, attempt: int) -> Awaitable[list[float | None]]:
            scorer: Any = m.engine
            return scorer.prompt_logprobs(token_ids, session_id=session_id)

        rows, _, _ = await self._route(session_id, call)
        return rows

    def end_session(self, session_id: str) -> None:
        """Forget a finished session so its server counts one session fewer."""
        m = self._sticky.pop(session_id, None)
        if m is not None:
            m.sessions -= 1

    def stats(self) -> list[dict[str, Any]]:
        return [
            {"server": m.name, "healthy": m.healthy, "in_flight": m.in_flight, "sessions": m.sessions,
             "served": m.served, "failures": m.failures}
            for m in self.members
        ]  # fmt: skip

    async def _route(
        self, session_id: str | None, call: Callable[[Member, int], Awaitable[T]]
    ) -> tuple[T, Member, list[dict[str, Any]]]:
        self._ensure_health_task()
        retries: list[dict[str, Any]] = []
        tried: set[int] = set()
        while True:
            member = self._pick(session_id, tried)
            if member is None:
                errors = "; ".join(f"{m.name}: {m.last_error or 'unhealthy'}" for m in self.members)
                raise EngineUnavailable(f"no healthy server left in the pool ({errors})")
            member.in_flight += 1
            try:
                result = await call(member, len(retries))
            except EngineUnavailable as e:
                self._take_out(member, e)
                tried.add(id(member))
                retries.append({"server": member.name, "error": f"{type(e).__name__}: {e}"[:500]})
                continue
            finally:
                member.in_flight -= 1
            member.served += 1
            return result, member, retries

    def _pick(self, session_id: str | None, tried: set[int]) -> Member | None:
        if self.routing == "round_robin":
            return self._next_in_turn(tried)
        if self.routing == "least_loaded":
            session_id = None  # no session is remembered: every call goes where the load is lowest
        if session_id is not None and (m := self._sticky.get(session_id)) is not None:
            if m.healthy and id(m) not in tried:
                self._sticky.move_to_end(session_id)
                return m
            self.end_session(session_id)  # its server went away: re-home the session
        live = [m for m in self.members if m.healthy and id(m) not in tried]
        if not live:
            return None
        self._rr += 1
        n = len(self.members)
        best = min(live, key=lambda m: (m.in_flight, m.sessions, (self.members.index(m) - self._rr) % n))
        if session_id is not None:
            self._sticky[session_id] = best
            best.sessions += 1
            if len(self._sticky) > self._max_sessions:
                self.end_session(next(iter(self._sticky)))
        return best

    def _next_in_turn(self, tried: set[int]) -> Member | None:
        n = len(self.members)
        for step in range(n):
            m = self.members[(self._rr + step) % n]
            if m.healthy and id(m) not in tried:
                self._rr = (self._rr + step + 1) % n
                return m
        return None

    def _take_out(self, m: Member, error: Exception) -> None:
        if m.healthy:
            m.healthy, m.down_since = False, time.monotonic()
        m.failures += 1
        m.last_error = str(error)[:300]

    def _ensure_health_task(self) -> None:
        if self._health_task is None or self._health_task.done():
            self._health_task = asyncio.get_running_loop().create_task(self._health_loop())

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_s)
            await self._check_all()

    @property
    def policy_version(self) -> int:
        return self._version

    async def pause(self, mode: PauseMode = "wait") -> None:
        await asyncio.gather(*(m.engine.pause(mode) for m in self.members if m.healthy))

    async def resume(self) -> None:
        await asyncio.gather(*(m.engine.resume() for m in self.members if m.healthy))

    async def update_weights(self, source: WeightSource, *, version: int, mode: PauseMode = "wait") -> WeightUpdate:
        """Every healthy server takes the weights at once; one that fails is taken out of the rotation (it
        would sample from the old policy) and named in `failed`."""
        if version <= self._version:
            raise ConfigError(f"weight version {version}: must be above the current one ({self._version})")
        members = [m for m in self.members if m.healthy]
        with checkpoint_dir(source) as path:  # a state dict is written once for every server
            results = await asyncio.gather(
                *(m.engine.update_weights(path, version=version, mode=mode) for m in members), return_exceptions=True
            )
        done = WeightUpdate(version, mode, stall_s=0.0, load_s=0.0)
        for m, r in zip(members, results, strict=True):
            if isinstance(r, BaseException):
                done.failed[m.name] = f"{type(r).__name__}: {r}"
                self._take_out(m, EngineUnavailable(f"weight update to version {version} failed: {r}"))
            else:
                done.applied.append(m.name)
                done.stall_s, done.load_s = max(done.stall_s, r.stall_s), max(done.load_s, r.load_s)
        if not done.applied:
            raise EngineUnavailable(f"weight update to version {version} failed on every server: {done.failed}")
        self._version = version
        return done

    async def _check_all(self) -> None:
        results = await asyncio.gather(*(m.engine.health() for m in self.members), return_exceptions=True)
        for m, ok in zip(self.members, results, strict=True):
            stale = getattr(m.engine, "policy_version", self._version) < self._version  # missed a weight update
            if ok is True and not stale:
                m.healthy, m.down_since = True, None
            elif m.healthy:
                self._take_out(m, EngineUnavailable(f"health check failed: {ok}"))

    async def aclose(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        for m in self.members:
            await m.engine.aclose()
