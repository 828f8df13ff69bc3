"""P3 cost growth: the loop's own time per turn at turn 64 over turn 1 (target <= 1.1).

The P2 harness with 64 calculator turns (then a final answer) per episode, against the instant
engine, one episode at a time so that nothing else runs between two turns of it. The engine notes
when each generate call arrives; turn i's cost is the time from call i to call i+1: parse, tool,
bridge, bookkeeping and the event loop, everything but the (instant) engine. Each figure pools
four turns (1-4 and 61-64) across episodes and takes the median, so one slow turn is not the result.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import statistics
from typing import Any

from agentroll.bench import workload
from agentroll.bench.common import run_pinned
from agentroll.errors import AgentrollError

TOOL_TURNS = 64
WINDOW = 4  # turns pooled at each end


def measure(*, quick: bool = False) -> dict[str, Any]:
    return run_pinned("p3", quick=quick)


def measure_here(*, quick: bool = False) -> dict[str, Any]:
    episodes = 6 if quick else 40
    _turn_costs(2)  # warm-up: imports, caches, the compiled template
    costs = _turn_costs(episodes)
    first = statistics.median(c for per_turn in costs for c in per_turn[:WINDOW])
    last = statistics.median(c for per_turn in costs for c in per_turn[TOOL_TURNS - WINDOW : TOOL_TURNS])
    by_turn = [statistics.median(per_turn[i] for per_turn in costs) for i in range(TOOL_TURNS)]
    return {
        "p3_cost_growth": round(last / first, 3),
        "p3_turn1_us": round(first * 1e6, 1),
        "p3_turn64_us": round(last * 1e6, 1),
        "p3_by_turn_us": [round(c * 1e6, 1) for c in by_turn],
        "p3_notes": (
            f"P2 harness (real loop, smollm2 renderer + tokenizer, calculator tool, instant ReplayEngine), "
            f"{episodes} episodes of {TOOL_TURNS} calculator turns + a final answer, one at a time, pinned to one "
            f"core; turn i = time between generate calls i and i+1; median of turns 1-{WINDOW} vs "
            f"{TOOL_TURNS - WINDOW + 1}-{TOOL_TURNS} pooled over episodes; check_prefix=off (the end-of-episode "
            "check runs after the last turn, outside every turn's time)."
        ),
    }


def _turn_costs(episodes: int) -> list[list[float]]:
    """Per episode, the cost of each of its tool turns (seconds), in order."""
    timed = workload.Timed()
    engine = workload.TimedReplay(workload.script(TOOL_TURNS), timed)
    gc.collect()
    trajs, _ = asyncio.run(workload.run_episodes(episodes, 1, TOOL_TURNS, check="off", engine=engine))
    if any(len(t.turns) != TOOL_TURNS + 1 or t.stop_reason != "done" for t in trajs):
        raise AgentrollError("p3: an episode did not run its scripted turns")
    return [[b - a for a, b in itertools.pairwise(arr)] for arr in timed.arrivals.values()]
