"""The pool over two real vLLM CPU servers: sticky sessions, balance, failover, recovery."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from agentroll.engines.pool import PoolEngine
from agentroll.engines.verify import check_logprobs
from agentroll.engines.vllm_server import VLLMServerEngine
from agentroll.types import SamplingParams

pytestmark = pytest.mark.slow


def make_pool(servers: list[Any]) -> PoolEngine:
    return PoolEngine([VLLMServerEngine(s.url) for s in servers], health_interval_s=1.0)


async def episode(pool: PoolEngine, session: str, prompt: list[int], turns: int, sp: SamplingParams) -> list[Any]:
    """A stand-in for the agent loop: each turn's prompt is the whole conversation so far."""
    ids, completions = list(prompt), []
    for _ in range(turns):
        c = await pool.generate(ids, sp, session_id=session)
        completions.append(c)
        ids += [*c.token_ids, 198, 1, 4093, 198]  # "\n<|im_start|>user\n": a bridge, as a renderer would add
    return completions


def test_pool_keeps_an_episode_on_one_server_and_balances_episodes(
    vllm_servers: list[Any], loop: Any, tokenizer: Any
) -> None:
    pool = make_pool(vllm_servers)
    # Long enough to fill whole KV blocks: only full blocks are prefix-cached.
    system = {"role": "system", "content": "You are a careful assistant who counts slowly. " * 30}
    prompt = tokenizer.apply_chat_template(
        [system, {"role": "user", "content": "Count from one to five."}], add_generation_prompt=True, return_dict=False
    )
    sp = SamplingParams(temperature=1.0, max_tokens=12, seed=5)

    async def run() -> list[list[Any]]:
        return await asyncio.gather(*(episode(pool, f"ep{i}", list(prompt), 3, sp) for i in range(4)))

    try:
        episodes = loop.run(run())
        homes = [{c.meta["pool_server"] for c in turns} for turns in episodes]
        assert all(len(h) == 1 for h in homes), homes  # every turn of an episode on one server
        per_server = [sum(1 for h in homes if s.url in h) for s in vllm_servers]
        assert per_server == [2, 2], per_server  # episodes spread evenly
        later_turns = [c for turns in episodes for c in turns[1:]]
        assert all(c.cached_prompt_tokens and c.cached_prompt_tokens > 0 for c in later_turns)  # the prefix cache paid
        assert all(c.meta["pool_retries"] == [] for turns in episodes for c in turns)
    finally:
        loop.run(pool.aclose())


def test_pool_survives_a_server_killed_mid_run_and_takes_it_back(
    vllm_servers: list[Any], loop: Any, tokenizer: Any, model_dir: Any
) -> None:
    from agentroll.engines.launch import start_vllm_server

    pool = make_pool(vllm_servers)
    victim = vllm_servers[1]
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Tell me a story."}], add_generation_prompt=True, return_dict=False
    )
    sp = SamplingParams(temperature=1.0, max_tokens=48, ignore_eos=True, seed=9)

    async def run_and_kill() -> list[Any]:
        tasks = [asyncio.ensure_future(pool.generate(prompt, sp, session_id=f"k{i}")) for i in range(6)]
        await asyncio.sleep(1.5)  # all in flight, both servers busy
        await asyncio.to_thread(victim.kill)
        return await asyncio.gather(*tasks)

    try:
        results = loop.run(run_and_kill())
        assert all(len(c.token_ids) == 48 for c in results)  # no request lost
        retried = [c for c in results if c.meta["pool_retries"]]
        assert retried, "the killed server held no in-flight request"
        for c in retried:  # recorded, and re-sent to the survivor
            assert c.meta["pool_retries"][0]["server"] == victim.url
            assert c.meta["pool_server"] == vllm_servers[0].url
        # A retried completion is a real one: its logprobs survive the teacher-forced check.
        check = loop.run(check_logprobs(pool, prompt, retried[0], session_id="k-check"))
        assert check.ok, check
        assert not next(m for m in pool.members if m.name == victim.url).healthy

        port = int(victim.url.rsplit(":", 1)[1])
        vllm_servers[1] = start_vllm_server(model_dir, port=port, kv_cache_gib=1)
        deadline = time.monotonic() + 30
        while not all(m.healthy for m in pool.members):
            assert time.monotonic() < deadline, pool.stats()
            time.sleep(0.5)
        short = sp.model_copy(update={"max_tokens": 4})

        async def fresh() -> list[Any]:
            return await asyncio.gather(*(pool.generate(prompt, short, session_id=f"new{i}") for i in range(2)))

        homes = {c.meta["pool_server"] for c in loop.run(fresh())}
        assert homes == {s.url for s in vllm_servers}  # the recovered server takes new episodes again
    finally:
        loop.run(pool.aclose())
