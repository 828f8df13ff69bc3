"""P1 loop efficiency: sampled tokens/s of multi-turn tool episodes ÷ the same engine's tokens/s replaying
exactly those requests as raw generation (docs/benchmarks.md, "Loop efficiency").

One real vLLM CPU server (SmolLM2-135M, fp32, eager), the `vllm://` engine (token-in/token-out
/inference/v1/generate). Rounds alternate rollout and replay; each phase starts with the server's prefix
cache emptied and counts the tokens the server says it sampled (`vllm:generation_tokens_total`) over the
phase's wall time. A first round warms the server up and is reported apart (`p1_warmup_ratio`), not
counted: a fresh server's first requests are slower, and that round was the low one in every full run.
After the rounds, one chained replay (each episode's turns in order, no loop work in between) splits the gap
into the multi-turn structure (chained ÷ replay) and the loop itself (rollout ÷ chained).

    from agentroll.bench import p1
    figures = p1.measure(quick=True)   # 8 questions, 2 turns x 32 tokens, concurrency 8: about a minute
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections import Counter
from typing import Any

from agentroll.bench.common import load_average
from agentroll.bench.p1_profile import profile
from agentroll.bench.p1_vllm import Delta, delta, read_counters, reset_prefix_cache, vllm_servers
from agentroll.bench.p1_workload import (
    FULL,
    QUICK,
    Phase,
    Request,
    Workload,
    chained_replay,
    replay,
    replay_params,
    rollout,
)
from agentroll.types import SamplingParams

KV_CACHE_GIB = 2  # ample for 64 episodes of <2k tokens; the server's RSS stays well under the shared 24 GiB


def measure(*, quick: bool = False) -> dict[str, Any]:
    """Start one vLLM CPU server, run the rounds, stop the server (by PID) and return the figures."""
    workload, rounds = (QUICK, 2) if quick else (FULL, 3)  # the shared machine is noisy: a median of 3
    with vllm_servers(1, kv_cache_gib=KV_CACHE_GIB) as servers:
        return asyncio.run(measure_on(servers[0].url, workload, rounds=rounds))


async def measure_on(
    url: str, workload: Workload, *, rounds: int = 2, warmup: bool = True, chained: bool = True
) -> dict[str, Any]:
    """The P1 rounds against a running vLLM server at `url` (started with VLLM_SERVER_DEV_MODE=1 so that its
    prefix cache can be reset between phases; without it the cache carries over and the notes say so).
    With `warmup`, one more round runs first and only its ratio is reported."""
    from agentroll.bench.p1_workload import run_config
    from agentroll.engines.vllm_server import VLLMServerEngine

    config = run_config(workload)
    engine = VLLMServerEngine(url)
    resets: list[bool] = []
    load = [load_average()]

    async def phase(run: Any) -> tuple[Phase, Delta]:
        resets.append(reset_prefix_cache(url))
        before = read_counters(url)
        result = await run
        return result, delta(before, read_counters(url))

    async def one_round(tag: str) -> tuple[Phase, Delta, Phase, Delta, list[Request], list[SamplingParams]]:
        ro, ro_d = await phase(rollout(config, engine))
        sent = [r for r in ro.requests if not r.failed]
        params = replay_params(sent, config.episode.sampling)
        rp, rp_d = await phase(replay(engine, sent, params, workload.concurrency, tag))
        return ro, ro_d, rp, rp_d, sent, params

    try:
        await engine.models()
        warm = None
        if warmup:
            ro, ro_d, rp, rp_d, _, _ = await one_round("p1-warmup")
            warm = _ratio(ro, ro_d, rp, rp_d)
        rows = []
        for i in range(rounds):
            ro, ro_d, rp, rp_d, sent, params = await one_round(f"p1-replay{i}")
            rows.append((ro, ro_d, rp, rp_d))
        ch = ch_d = None
        if chained:
            ch, ch_d = await phase(chained_replay(engine, sent, params, workload.concurrency, "p1-chained"))
        # The cost of guided calls: the same rollout with tool_choice held by guided decoding (a structural
        # tag) instead of the forced opener alone, right after the last opener rollout.
        guided_episode = config.episode.model_copy(update={"tool_choice_enforcement": "guided"})
        gd, gd_d = await phase(rollout(config.model_copy(update={"episode": guided_episode}), engine))
    finally:
        await engine.aclose()
    load.append(load_average())
    out = {
        **figures(rows, ch, ch_d, workload, all(resets)),
        **guided_figures(rows[-1], gd, gd_d),
        "p1_load_average": load,
    }
    if warm is not None:
        out["p1_warmup_ratio"] = round(warm, 4)
    return out


def _ratio(ro: Phase, ro_d: Delta, rp: Phase, rp_d: Delta) -> float:
    return (ro_d.generated / ro.wall_s) / (rp_d.generated / rp.wall_s)


def figures(
    rows: list[tuple[Phase, Delta, Phase, Delta]], ch: Phase | None, ch_d: Delta | None, w: Workload, reset: bool
) -> dict[str, Any]:
    ro_tps = [d.generated / ro.wall_s for ro, d, _, _ in rows]
    rp_tps = [d.generated / rp.wall_s for _, _, rp, d in rows]
    ratios = [_ratio(*row) for row in rows]
    last_ro, last_ro_d, last_rp, last_rp_d = rows[-1]
    out: dict[str, Any] = {
        "p1_loop_efficiency": round(statistics.median(ratios), 4),
        "p1_ratios": [round(r, 4) for r in ratios],
        "p1_rollout_tokens_per_s": [round(x, 1) for x in ro_tps],
        "p1_replay_tokens_per_s": [round(x, 1) for x in rp_tps],
        "p1_rollout_tokens": [int(d.generated) for _, d, _, _ in rows],
        "p1_replay_tokens": [int(d.generated) for _, _, _, d in rows],
        "p1_client_counted_tokens": [sum(r.generated for r in ro.requests) for ro, _, _, _ in rows],
        "p1_rollout_wall_s": [round(ro.wall_s, 3) for ro, _, _, _ in rows],
        "p1_replay_wall_s": [round(rp.wall_s, 3) for _, _, rp, _ in rows],
        "p1_requests": [len(ro.requests) for ro, _, _, _ in rows],
        "p1_episodes": len(last_ro.trajectories),
        "p1_stop_reasons": _stop_reasons(last_ro.trajectories),
        "p1_tool_calls_parsed": calls_parsed(last_ro.trajectories),
        "p1_tool_calls_ran": calls_ran(last_ro.trajectories),
        "p1_rollout_prefix_cache_hit_rate": [round(d.hit_rate, 4) for _, d, _, _ in rows],
        "p1_replay_prefix_cache_hit_rate": [round(d.hit_rate, 4) for _, _, _, d in rows],
        "p1_rollout_preemptions": sum(int(d.preemptions) for _, d, _, _ in rows),
        "p1_replay_preemptions": sum(int(d.preemptions) for _, _, _, d in rows),
    }
    out.update(profile(last_ro, last_rp, last_ro_d, last_rp_d, w.concurrency))
    if ch is not None and ch_d is not None:
        ch_tps = ch_d.generated / ch.wall_s
        out["p1_chained_replay_tokens_per_s"] = round(ch_tps, 1)
        out["p1_profile_structure_efficiency"] = round(ch_tps / rp_tps[-1], 4)  # turns in order vs all independent
        out["p1_profile_loop_vs_chained"] = round(ro_tps[-1] / ch_tps, 4)  # the loop's own work between turns
        out["p1_chained_prefix_cache_hit_rate"] = round(ch_d.hit_rate, 4)
    out["p1_notes"] = (
        f"{w.describe()}; engine vllm:// (/inference/v1/generate) on one vLLM CPU server, SmolLM2-135M fp32 eager; "
        "a warm-up round (p1_warmup_ratio, not counted), then "
        f"{len(rows)} rounds alternating rollout (agentroll.rollout.runner.run) and raw replay (same prompt IDs, "
        "ignore_eos, max_tokens = recorded length, same concurrency cap and submission order); tokens = delta of "
        "the server's vllm:generation_tokens_total over each phase's wall time; ratio = median over rounds; "
        + ("prefix cache reset before every phase" if reset else "prefix cache NOT reset (no dev-mode endpoint)")
        + "; last round profiled; chained replay = same requests, each episode's turns in order, no loop work; "
        + f"{os.cpu_count()} cores shared with other work (p1_load_average: 1-min load at start and end)"
    )
    return out


def guided_figures(opener: tuple[Phase, Delta, Phase, Delta], gd: Phase, gd_d: Delta) -> dict[str, Any]:
    """Guided rollout vs the last opener rollout of the same run: tokens/s and how many calls parsed."""
    ro, ro_d = opener[0], opener[1]
    guided_tps, opener_tps = gd_d.generated / gd.wall_s, ro_d.generated / ro.wall_s
    return {
        "p1_guided_rollout_tokens_per_s": round(guided_tps, 1),
        "p1_guided_vs_opener_tokens_per_s": round(guided_tps / opener_tps, 4),
        "p1_guided_rollout_wall_s": round(gd.wall_s, 3),
        "p1_guided_rollout_tokens": int(gd_d.generated),
        "p1_guided_tool_calls_parsed": calls_parsed(gd.trajectories),
        "p1_guided_tool_calls_ran": calls_ran(gd.trajectories),
    }


def _stop_reasons(trajectories: list[dict[str, Any]]) -> str:
    counts = Counter(t.get("stop_reason", "") for t in trajectories)
    return ", ".join(f"{k}:{v}" for k, v in sorted(counts.items()))


def calls_parsed(trajectories: list[dict[str, Any]]) -> float:
    """Share of the tool calls in the model's turns that parsed (status ok, arguments valid JSON for the tool)."""
    calls = [c for t in trajectories for turn in t.get("turns", []) for c in turn.get("tool_calls", [])]
    return round(sum(c.get("status") == "ok" for c in calls) / len(calls), 4) if calls else 0.0


def calls_ran(trajectories: list[dict[str, Any]]) -> float:
    """Share of the tool calls in the model's turns whose tool ran and answered without an error."""
    calls = sum(len(turn.get("tool_calls", [])) for t in trajectories for turn in t.get("turns", []))
    ran = sum(not r.get("is_error") for t in trajectories for r in t.get("tool_results", []))
    return round(ran / calls, 4) if calls else 0.0
