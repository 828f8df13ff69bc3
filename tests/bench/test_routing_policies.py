"""The pool's routing policies, over instant replay engines (fast): where each call of an episode lands."""

from __future__ import annotations

import asyncio

import pytest

from agentroll.engines.pool import PoolEngine
from agentroll.engines.replay import ReplayEngine
from agentroll.errors import ConfigError
from agentroll.types import SamplingParams

SP = SamplingParams(max_tokens=4)


def servers_of_calls(routing: str, sessions: int, turns: int) -> dict[str, list[str]]:
    """Run `sessions` episodes of `turns` calls each, turn by turn in lockstep; the server of each call."""

    async def go() -> dict[str, list[str]]:
        engines = [ReplayEngine([[1, 2, 3]]), ReplayEngine([[4, 5, 6]])]
        for i, e in enumerate(engines):
            e.base_url = f"server{i}"  # the pool names members by base_url
        pool = PoolEngine(engines, routing=routing)
        seen: dict[str, list[str]] = {f"ep{s}": [] for s in range(sessions)}
        try:
            for _ in range(turns):
                for session, where in seen.items():
                    c = await pool.generate([7, 8, 9], SP, session_id=session)
                    where.append(c.meta["pool_server"])
        finally:
            await pool.aclose()
        return seen

    return asyncio.run(go())


def test_sticky_routing_keeps_every_turn_of_an_episode_on_one_server() -> None:
    seen = servers_of_calls("sticky", sessions=4, turns=3)
    assert all(len(set(where)) == 1 for where in seen.values()), seen
    assert sorted(where[0] for where in seen.values()) == ["server0", "server0", "server1", "server1"]


def test_round_robin_sends_successive_calls_to_the_servers_in_turn() -> None:
    seen = servers_of_calls("round_robin", sessions=3, turns=2)
    order = [where[turn] for turn in range(2) for where in seen.values()]
    assert order == ["server0", "server1"] * 3
    assert any(len(set(where)) == 2 for where in seen.values())  # episodes move between servers


def test_least_loaded_routing_ignores_sessions() -> None:
    seen = servers_of_calls("least_loaded", sessions=1, turns=4)
    assert set(seen["ep0"]) == {"server0", "server1"}  # idle servers take turns, session or not


def test_an_unknown_routing_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="round_robin"):
        PoolEngine([ReplayEngine([[1]])], routing="random")
