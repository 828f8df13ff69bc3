"""P2 orchestration ceiling: the real episode loop against an instant engine, one process on one core.

Many episodes run concurrently on one asyncio loop; the engine (ReplayEngine) answers each turn at
once with pre-encoded token IDs (see workload.py), so everything measured is agentroll's own work:
parse the sampled IDs, run the calculator tool, render and encode the bridge, keep the records.
Figures are sampled tokens and turns per second of wall time, median of the rounds.

Two configurations, side by side: the loop as it feeds an engine (`check_prefix="off"`: drift is
checked afterwards, e.g. by `agentroll verify`) and the loop's default (`check_prefix="end"`: each
finished episode is re-rendered and re-encoded whole to prove it has no drift). The second costs a
full encode of every episode's text, so it is bounded by the tokenizer's own speed.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
from dataclasses import dataclass, field
from typing import Any

from agentroll.bench import workload
from agentroll.bench.common import run_pinned
from agentroll.errors import AgentrollError
from agentroll.trajectory import Trajectory

TOOL_TURNS = 3  # then a final answer: 4 turns an episode
CONCURRENCY = 64


def measure(*, quick: bool = False) -> dict[str, Any]:
    return run_pinned("p2", quick=quick)


def measure_here(*, quick: bool = False) -> dict[str, Any]:
    episodes, rounds = (100, 1) if quick else (2000, 3)
    asyncio.run(workload.run_episodes(32, CONCURRENCY, TOOL_TURNS))  # warm-up: imports, caches, template
    out: dict[str, Any] = {}
    for check, prefix in (("off", "p2"), ("end", "p2_checked")):
        figures = [_round(episodes, check) for _ in range(rounds)]
        out[f"{prefix}_tokens_per_s"] = round(statistics.median(f["tokens_per_s"] for f in figures))
        out[f"{prefix}_turns_per_s"] = round(statistics.median(f["turns_per_s"] for f in figures))
        out[f"{prefix}_rounds"] = figures
    turn_lengths = [len(c.token_ids) for c in workload.script(TOOL_TURNS)]
    out["p2_tokens_per_turn"] = round(sum(turn_lengths) / len(turn_lengths), 1)
    out["p2_notes"] = (
        f"real loop (agent.run_episode), renderer {workload.RENDERER} (real tokenizer + chatml-tools template), "
        f"real calculator tool, instant ReplayEngine; {episodes} episodes x {len(turn_lengths)} turns "
        f"({TOOL_TURNS} calculator calls + a final answer; sampled tokens per turn {turn_lengths}: realistic "
        f"model outputs encoded with the real tokenizer, not sampled), {CONCURRENCY} concurrent, one process "
        f"pinned to one core, median of {rounds} rounds; each finished episode counted and let go, GC passes "
        "as in a run (rollout.gcpolicy). p2_*: check_prefix=off (the loop feeding the engine); "
        "p2_checked_*: check_prefix=end (the default: every finished episode re-rendered and re-encoded whole)."
    )
    return out


@dataclass(slots=True)
class _Tally:
    """What P2 needs of each finished episode; the episode itself is let go, as a run does."""

    tokens: int = 0
    turns: int = 0
    unclean: list[str] = field(default_factory=list)

    def add(self, traj: Trajectory) -> None:
        self.tokens += sum(len(t.sampled_ids) for t in traj.turns)
        self.turns += len(traj.turns)
        if traj.stop_reason != "done" or traj.metadata.get("drift"):
            self.unclean.append(traj.id)


def _round(episodes: int, check: str) -> dict[str, Any]:
    gc.collect()
    tally = _Tally()
    _, wall = asyncio.run(workload.run_episodes(episodes, CONCURRENCY, TOOL_TURNS, check=check, on_done=tally.add))
    if tally.unclean:  # the workload must run as designed, or the figures mean nothing
        raise AgentrollError(f"p2: {len(tally.unclean)} episodes did not finish cleanly, e.g. {tally.unclean[0]}")
    return {"seconds": round(wall, 3), "tokens_per_s": tally.tokens / wall, "turns_per_s": tally.turns / wall}
