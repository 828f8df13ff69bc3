"""Verify a run: the logprobs recorded at sampling time are the ones a trainer will recompute.

For every segment of every trajectory, one teacher-forced forward pass over its tokens (the engine's
`prompt_logprobs`, fp32 on the embedded engine) gives log p(token | tokens before it); on every
trainable token (mask 1) it must equal the sampled logprob within 1e-3. A token changed after
sampling, a re-tokenized bridge or a different model all show up here. Drift (metadata["drift"],
the runtime prefix check) is counted too: either one fails the run.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any

from agentroll.engines.verify import TOLERANCE, teacher_forced_logprobs
from agentroll.trajectory import Segment, Trajectory


async def verify_trajectories(engine: Any, trajs: Iterable[Trajectory], *, concurrency: int = 8) -> dict[str, Any]:
    """The report: max |delta| over trainable tokens, where it is, drift count, and `ok`."""
    trajs = list(trajs)
    limit = asyncio.Semaphore(concurrency)

    async def one(traj: Trajectory, index: int, seg: Segment) -> tuple[float, int, int]:
        async with limit:
            return await _segment_delta(engine, seg, session_id=f"verify-{traj.id}-{index}")

    jobs = [(t, i, s) for t in trajs for i, s in enumerate(t.segments) if 1 in s.loss_mask]
    results = await asyncio.gather(*(one(t, i, s) for t, i, s in jobs))
    worst = max(range(len(jobs)), key=lambda k: results[k][0], default=None)
    max_delta = results[worst][0] if worst is not None else 0.0
    drift = sum(bool(t.metadata.get("drift")) for t in trajs)
    report = {
        "trajectories": len(trajs),
        "segments_checked": len(jobs),
        "tokens_checked": sum(r[1] for r in results),
        "max_abs_delta": max_delta,
        "worst": None
        if worst is None
        else {"id": jobs[worst][0].id, "segment": jobs[worst][1], "token_index": results[worst][2]},
        "drift_count": drift,
        "not_token_exact": sum(t.metadata.get("token_exact") is False for t in trajs),
        "tolerance": TOLERANCE,
    }
    report["ok"] = max_delta <= TOLERANCE and drift == 0 and report["not_token_exact"] == 0
    return report


async def _segment_delta(engine: Any, seg: Segment, *, session_id: str) -> tuple[float, int, int]:
    """(max |sampled - teacher-forced| over the segment's mask-1 tokens, tokens checked, worst index)."""
    first = seg.loss_mask.index(1)
    teacher = await teacher_forced_logprobs(engine, seg.token_ids[:first], seg.token_ids[first:], session_id=session_id)
    worst, at, checked = 0.0, -1, 0
    for offset, lp in enumerate(teacher):
        i = first + offset
        if seg.loss_mask[i] != 1:
            continue
        checked += 1
        sampled = seg.logprobs[i]
        delta = math.inf if sampled is None else (0.0 if sampled == lp else abs(sampled - lp))
        if delta > worst or at < 0:
            worst, at = delta, i
    return worst, checked, at
