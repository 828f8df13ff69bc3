"""Staleness: how many policy versions behind the current one an episode's oldest token is.

An episode that ran while the weights changed holds tokens of older policies (off-policy data). When it
finishes, `staleness = engine.policy_version - min(turn.policy_version)`; with `max_staleness: k` in the
run config, an episode more than k versions behind is played again (`on_stale: rerun`, at most
MAX_RERUNS times, then kept and marked) or kept and marked (`on_stale: keep`). Every trajectory records
`metadata["staleness"]` where the engine has versions; a marked one has `metadata["stale"] = True`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from agentroll.engines.base import Engine, WeightUpdatable
from agentroll.trajectory import Trajectory

MAX_RERUNS = 3


def staleness(traj: Trajectory, current: int) -> int | None:
    versions = [t.policy_version for t in traj.turns if t.policy_version is not None]
    return current - min(versions) if versions else None


async def within_staleness(
    play: Callable[[], Awaitable[Trajectory]], engine: Engine, max_staleness: int | None, on_stale: str
) -> Trajectory:
    """`play()` once, or again while its result is more than `max_staleness` versions old (on_stale=rerun)."""
    for rerun in range(MAX_RERUNS + 1):
        traj = await play()
        if not isinstance(engine, WeightUpdatable):
            return traj
        behind = staleness(traj, engine.policy_version)
        traj.metadata["staleness"] = behind
        if rerun:
            traj.metadata["stale_reruns"] = rerun
        if max_staleness is None or behind is None or behind <= max_staleness:
            return traj
        if on_stale == "keep" or rerun == MAX_RERUNS:
            traj.metadata["stale"] = True
            return traj
    raise AssertionError("unreachable")
