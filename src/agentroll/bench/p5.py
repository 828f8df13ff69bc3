"""P5 tools that take time: does the engine stay busy while tools run? (docs/benchmarks.md)

Multi-turn calculator episodes (P1's workload) whose every tool call takes a random time (lognormal, mean
`latency_s`, sigma 0.75: a long tail), on one real vLLM CPU server whose batch is capped at BATCH sequences
(`--max-num-seqs`). For each tool latency and each over-subscription k, the runner keeps k x BATCH episodes
in flight; then exactly the requests it sent are replayed as raw generation with BATCH in flight (the
engine's batch full all the time: what it can do). Loop efficiency = rollout tok/s / replay tok/s, tokens
counted by the server (`vllm:generation_tokens_total`). The calls are held to schema-valid calculator calls
(guided tool_choice), so that every turn's tool really runs and waits. While each phase runs, the server's
own gauge of running requests (`vllm:num_requests_running`) is sampled every 0.2 s: the engine's busy
fraction is the share of samples with a request running, its batch occupancy the mean running / BATCH.

    from agentroll.bench import p5
    figures = p5.measure(quick=True)
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

from agentroll.bench.common import load_average
from agentroll.bench.p1 import calls_parsed, calls_ran
from agentroll.bench.p1_vllm import delta, read_counters, reset_prefix_cache
from agentroll.bench.p1_workload import Phase, Workload, replay, replay_params, rollout, run_config
from agentroll.tools import Toolset, make_builtin
from agentroll.tools.base import Tool

BATCH = 8
SIGMA = 0.75
# The test's variant: how the figures are made, in about a tenth of the full run's tokens.
QUICK = {"latencies": (0.0, 1.5), "oversubscription": (1, 2), "workload": Workload(16, 2, 32, BATCH)}
FULL = {"latencies": (0.0, 1.0, 2.0), "oversubscription": (1, 4), "workload": Workload(128, 3, 48, BATCH)}


class SlowTool:
    """A tool that answers as `inner` does, after a lognormal wait of mean `latency_s` (capped at 8x it)."""

    def __init__(self, inner: Tool, latency_s: float, seed: int = 0):
        self.inner, self.spec, self.timeout_s = inner, inner.spec, None
        self.latency_s, self.rng = latency_s, random.Random(seed)
        self.mu = math.log(latency_s) - SIGMA**2 / 2 if latency_s > 0 else 0.0  # E[lognormal] = latency_s
        self.waits: list[float] = []

    async def run(self, arguments: dict[str, Any]) -> Any:
        if self.latency_s > 0:
            wait = min(self.rng.lognormvariate(self.mu, SIGMA), 8 * self.latency_s)
            self.waits.append(wait)
            await asyncio.sleep(wait)
        return await self.inner.run(arguments)


def measure(*, quick: bool = False) -> dict[str, Any]:
    """Start one vLLM CPU server (batch capped at BATCH), run every cell, stop the server (by PID)."""
    from agentroll.engines.checkpoint import ensure_default_checkpoint
    from agentroll.engines.launch import start_vllm_server

    plan = QUICK if quick else FULL
    server = start_vllm_server(ensure_default_checkpoint(), kv_cache_gib=2, extra_args=("--max-num-seqs", str(BATCH)))
    try:
        return asyncio.run(measure_on(server.url, **plan))
    finally:
        server.stop()


async def measure_on(url: str, *, latencies: tuple[float, ...], oversubscription: tuple[int, ...],
                     workload: Workload) -> dict[str, Any]:  # fmt: skip
    from agentroll.engines.vllm_server import VLLMServerEngine

    engine = VLLMServerEngine(url)
    demo = run_config(workload)  # P1's episodes, with the calls held to schema-valid ones so that every tool runs
    base = demo.model_copy(update={"episode": demo.episode.model_copy(update={"tool_choice_enforcement": "guided"})})
    cells: list[dict[str, Any]] = []
    load = [load_average()]
    try:
        await engine.models()
        await rollout(base.model_copy(update={"dataset": base.dataset.model_copy(update={"limit": BATCH})}), engine)
        for latency in latencies:
            for k in oversubscription:
                tool = SlowTool(make_builtin("calculator"), latency)
                config = base.model_copy(update={"concurrency": k * BATCH})
                reset_prefix_cache(url)
                before = read_counters(url)
                ro, ro_running = await _sampled(url, _rollout(config, engine, tool))
                ro_d = delta(before, read_counters(url))
                sent = [r for r in ro.requests if not r.failed]
                params = replay_params(sent, config.episode.sampling)
                reset_prefix_cache(url)
                before = read_counters(url)
                rp, rp_running = await _sampled(url, replay(engine, sent, params, BATCH, f"p5-{latency}-{k}"))
                rp_d = delta(before, read_counters(url))
                ro_tps, rp_tps = ro_d.generated / ro.wall_s, rp_d.generated / rp.wall_s
                cells.append({
                    "tool_latency_s": latency, "episodes_in_flight": k * BATCH, "oversubscription": k,
                    "loop_efficiency": round(ro_tps / rp_tps, 4),
                    "rollout_tokens_per_s": round(ro_tps, 1), "replay_tokens_per_s": round(rp_tps, 1),
                    "busy_fraction": _busy(ro_running), "batch_occupancy": _occupancy(ro_running),
                    "replay_busy_fraction": _busy(rp_running), "replay_batch_occupancy": _occupancy(rp_running),
                    "tool_calls_parsed": calls_parsed(ro.trajectories), "tool_calls_ran": calls_ran(ro.trajectories),
                    "tool_wait_mean_s": round(sum(tool.waits) / len(tool.waits), 3) if tool.waits else 0.0,
                    "tool_calls": len(tool.waits), "rollout_wall_s": round(ro.wall_s, 2),
                    "tokens": int(ro_d.generated),
                })  # fmt: skip
    finally:
        await engine.aclose()
    load.append(load_average())
    slow = [c for c in cells if c["tool_latency_s"] == max(latencies)]
    best = max(slow, key=lambda c: c["oversubscription"])
    return {
        "p5_loop_efficiency": best["loop_efficiency"],
        "p5_loop_efficiency_without_oversubscription": min(slow, key=lambda c: c["oversubscription"])[
            "loop_efficiency"
        ],
        "p5_cells": cells,
        "p5_load_average": load,
        "p5_notes": (
            f"{workload.describe().replace(f', concurrency {BATCH}', '')}; vLLM CPU server, --max-num-seqs {BATCH}; "
            f"guided calculator calls, each waiting lognormal(mean L, sigma {SIGMA}) before it answers; rollout "
            f"with k x {BATCH} "
            f"episodes in flight vs raw replay of the same requests with {BATCH} in flight; headline: "
            f"L = {max(latencies)} s, k = {best['oversubscription']}"
        ),
    }  # fmt: skip


async def _rollout(config: Any, engine: Any, tool: SlowTool) -> Phase:
    async with Toolset([tool]) as toolset:
        return await rollout(config, engine, toolset=toolset)


RUNNING = "vllm:num_requests_running"


async def _sampled(url: str, work: Any, every_s: float = 0.2) -> tuple[Any, list[float]]:
    """Run `work` while sampling the server's gauge of running requests; (its result, the samples)."""
    samples: list[float] = []
    task = asyncio.ensure_future(work)
    while not task.done():
        running = await asyncio.to_thread(_running, url)
        if running is not None:
            samples.append(running)
        await asyncio.wait([task], timeout=every_s)
    return task.result(), samples


def _running(url: str) -> float | None:
    try:
        return read_counters(url, (RUNNING,))[RUNNING]
    except Exception:  # a scrape that failed mid-phase is a missing sample, not a failed benchmark
        return None


def _busy(running: list[float]) -> float:
    """Share of the samples with at least one request running in the engine."""
    return round(sum(r >= 1 for r in running) / len(running), 4) if running else 0.0


def _occupancy(running: list[float]) -> float:
    """Mean requests running in the engine, as a share of its batch."""
    return round(sum(running) / len(running) / BATCH, 4) if running else 0.0
