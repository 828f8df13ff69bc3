"""Routing: sticky (session) vs round-robin routing of multi-turn episodes over two real vLLM CPU servers.

The same GSM8K calculator rollout (agentroll.rollout.runner.run, forced tool calls so every episode has
several turns) runs through a `PoolEngine` with each policy, alternating. Before each phase both servers'
prefix caches are emptied; after it, each server's own counters give its prefix-cache hit rate
(`vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total`, in tokens) and the tokens it sampled
(`vllm:generation_tokens_total`) over the phase's wall time.

    from agentroll.bench import routing
    figures = routing.measure(quick=True)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agentroll.bench.common import load_average
from agentroll.bench.p1_vllm import Delta, delta, read_counters, reset_prefix_cache, vllm_servers
from agentroll.bench.p1_workload import Workload, run_config

POLICIES = ("sticky", "round_robin")
FULL = Workload(questions=32, max_turns=4, max_tokens=64, concurrency=32)
# Greedy: both policies then send the same requests, so the quick comparison is about routing alone.
QUICK = Workload(questions=8, max_turns=3, max_tokens=48, concurrency=8, temperature=0.0)
KV_CACHE_GIB = 1  # per server


def measure(*, quick: bool = False) -> dict[str, Any]:
    """Start two vLLM CPU servers, compare the policies side by side, stop the servers (by PID)."""
    workload, rounds = (QUICK, 1) if quick else (FULL, 2)
    with vllm_servers(2, kv_cache_gib=KV_CACHE_GIB) as servers:
        return asyncio.run(measure_on([s.url for s in servers], workload, rounds=rounds))


async def measure_on(urls: list[str], workload: Workload, *, rounds: int = 1) -> dict[str, Any]:
    """Alternate the policies `rounds` times over the servers at `urls` (dev mode, for the cache reset)."""
    results: dict[str, list[tuple[float, list[Delta]]]] = {p: [] for p in POLICIES}
    resets: list[bool] = []
    load = [load_average()]
    for _ in range(rounds):
        for policy in POLICIES:
            resets += [reset_prefix_cache(u) for u in urls]
            results[policy].append(await _phase(urls, workload, policy))
    load.append(load_average())
    return {**_figures(results, workload, rounds, all(resets), len(urls)), "routing_load_average": load}


async def _phase(urls: list[str], workload: Workload, policy: str) -> tuple[float, list[Delta]]:
    """One rollout through a fresh pool with `policy`; its wall time and each server's counter deltas."""
    from agentroll.engines.pool import PoolEngine
    from agentroll.engines.vllm_server import VLLMServerEngine
    from agentroll.rollout.runner import run

    pool = PoolEngine([VLLMServerEngine(u) for u in urls], routing=policy)
    before = [read_counters(u) for u in urls]
    try:
        with tempfile.TemporaryDirectory(prefix="agentroll-routing-") as tmp:
            started = time.monotonic()
            await run(run_config(workload), Path(tmp) / "run", engine=pool, progress=False)
            wall = time.monotonic() - started
    finally:
        await pool.aclose()
    return wall, [delta(b, read_counters(u)) for b, u in zip(before, urls, strict=True)]


def _figures(
    results: dict[str, list[tuple[float, list[Delta]]]], w: Workload, rounds: int, reset: bool, n_servers: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for policy, phases in results.items():
        hits = [sum(d.cache_hits for d in ds) / max(1.0, sum(d.cache_queries for d in ds)) for _, ds in phases]
        tps = [sum(d.generated for d in ds) / wall for wall, ds in phases]
        out[f"routing_{policy}_prefix_cache_hit_rate"] = round(statistics.median(hits), 4)
        out[f"routing_{policy}_tokens_per_s"] = round(statistics.median(tps), 1)
        out[f"routing_{policy}_hit_rates"] = [round(h, 4) for h in hits]
        out[f"routing_{policy}_tokens_per_s_rounds"] = [round(t, 1) for t in tps]
        out[f"routing_{policy}_tokens"] = [int(sum(d.generated for d in ds)) for _, ds in phases]
        out[f"routing_{policy}_per_server_hit_rate"] = [round(d.hit_rate, 4) for d in phases[-1][1]]
        out[f"routing_{policy}_per_server_tokens"] = [int(d.generated) for d in phases[-1][1]]
    out["routing_hit_rate_gain"] = round(
        out["routing_sticky_prefix_cache_hit_rate"] - out["routing_round_robin_prefix_cache_hit_rate"], 4
    )
    out["routing_throughput_ratio"] = round(
        out["routing_sticky_tokens_per_s"] / max(1e-9, out["routing_round_robin_tokens_per_s"]), 4
    )
    out["routing_notes"] = (
        f"{w.describe()}; {n_servers} vLLM CPU servers (SmolLM2-135M fp32 eager, {KV_CACHE_GIB} GiB KV each) behind "
        f"agentroll's PoolEngine, routing sticky (per episode) vs round_robin (per call), {rounds} round(s) "
        "alternating, medians reported; hit rate = sum of the servers' prefix_cache_hits / prefix_cache_queries "
        "(tokens); tokens/s = the servers' generation_tokens_total delta over the phase's wall time; "
        + ("prefix caches reset before every phase" if reset else "prefix caches NOT reset (no dev-mode endpoint)")
        + f"; {os.cpu_count()} cores shared with other work (routing_load_average: 1-min load at start and end)"
    )
    return out
