"""The teacher-forced logprob check: do sampled logprobs equal what a trainer will recompute?

A trainer scores the trajectory's tokens with one forward pass over prompt + output. If the
engine's sampled logprobs differ from that (bf16 ties, a different kernel, tokens that are not
the ones sampled), importance ratios are off from step one. At fp32 the two agree within 1e-3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from agentroll.engines.base import PromptScorer
from agentroll.errors import ConfigError
from agentroll.trajectory import Completion

TOLERANCE = 1e-3


@dataclass(frozen=True, slots=True)
class LogprobCheck:
    max_delta: float  # largest |sampled - teacher-forced| over the completion's tokens
    sampled: list[float]
    teacher_forced: list[float]

    @property
    def ok(self) -> bool:
        return self.max_delta <= TOLERANCE


async def teacher_forced_logprobs(
    scorer: PromptScorer, prompt_ids: Sequence[int], output_ids: Sequence[int], *, session_id: str | None = None
) -> list[float]:
    """Logprob of each output token given the prompt and the output tokens before it."""
    if not output_ids:
        return []
    rows = await scorer.prompt_logprobs([*prompt_ids, *output_ids], session_id=session_id)
    return [float(x) for x in rows[len(prompt_ids) :]]


async def check_logprobs(
    scorer: PromptScorer, prompt_ids: Sequence[int], completion: Completion, *, session_id: str | None = None
) -> LogprobCheck:
    """Compare a completion's sampled logprobs with teacher-forced ones from the same engine."""
    if not isinstance(scorer, PromptScorer):
        raise ConfigError(f"{type(scorer).__name__} cannot compute prompt logprobs")
    if completion.logprobs is None:
        raise ConfigError("the completion carries no logprobs to check")
    teacher = await teacher_forced_logprobs(scorer, prompt_ids, completion.token_ids, session_id=session_id)
    return LogprobCheck(max_logprob_delta(completion.logprobs, teacher), list(completion.logprobs), teacher)


def max_logprob_delta(sampled: Sequence[float], teacher: Sequence[float]) -> float:
    """Largest absolute difference; inf when a side is non-finite and the other is not (or lengths differ)."""
    if len(sampled) != len(teacher):
        return math.inf
    worst = 0.0
    for a, b in zip(sampled, teacher, strict=True):
        if a == b:  # covers equal infinities
            continue
        worst = max(worst, abs(a - b))
    return worst
