"""An independent logprob reference: Hugging Face transformers, recomputing the way trainers do.

A trainer (verl's actor, TRL's GRPOTrainer) scores rollout tokens with one forward pass, divides the
logits by the sampling temperature and takes log_softmax. `HFReference` does that on the model's own
checkpoint, and applies the truncations that vLLM's sampler applies after temperature (min-p, then
top-k, then top-p; the same tie rules), so a trajectory's logprobs can be recomputed under the
convention it recorded without asking the engine that produced them:

- "processed" (the sampling distribution): temperature, min-p, top-k, top-p, renormalised;
- "raw": log_softmax of the logits (temperature 1, nothing truncated).

A token is `at_boundary` when a truncation's kept set is within float noise of changing (a top-p
cumulative sum within 1e-4 of the cut, a top-k tie, a probability at the min-p threshold): there the
engine and the reference may keep different sets and disagree by that token's share, legitimately.
Repetition penalties and grammar masks are not modelled: such trajectories are refused, not guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentroll.engines.base import RAW
from agentroll.errors import ConfigError

BOUNDARY_EPS = 1e-4
_GREEDY_EPS = 1e-5  # vLLM: a temperature below this is greedy, and its logprobs are at temperature 1


@dataclass(slots=True)
class ReferenceScores:
    """Per scored position: the reference logprob under the convention, the raw one, and the boundary flag."""

    logprobs: list[float]
    raw_logprobs: list[float]
    at_boundary: list[bool]


class HFReference:
    """transformers' AutoModelForCausalLM on a local checkpoint (fp32 by default: the exact comparison)."""

    def __init__(self, model_dir: str | Path, *, dtype: str = "float32"):
        import torch
        from transformers import AutoModelForCausalLM

        if dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype {dtype!r}: expected float32, bfloat16 or float16")
        self.model_dir, self.dtype = str(model_dir), dtype
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=getattr(torch, dtype))
        self.model.eval()

    def score(
        self, token_ids: Sequence[int], positions: Sequence[int], convention: Mapping[str, Any]
    ) -> ReferenceScores:
        """Logprob of token_ids[i] given token_ids[:i] for each i in `positions` (all >= 1)."""
        import torch

        check_supported(convention)
        if not positions:
            return ReferenceScores([], [], [])
        with torch.inference_mode():
            logits = self.model(torch.tensor([list(token_ids)])).logits[0]
            rows = logits[torch.tensor([p - 1 for p in positions])].float()
            targets = torch.tensor([token_ids[p] for p in positions]).unsqueeze(1)
            raw = rows.log_softmax(-1).gather(1, targets)[:, 0]
            if convention.get("mode") == RAW:
                return ReferenceScores(raw.tolist(), raw.tolist(), [False] * len(positions))
            processed, boundary = processed_logprobs(rows, targets, convention)
        return ReferenceScores(processed.tolist(), raw.tolist(), boundary.tolist())


def check_supported(convention: Mapping[str, Any]) -> None:
    if convention.get("repetition_penalty", 1.0) != 1.0:
        raise ConfigError("the reference does not model repetition_penalty; these logprobs cannot be recomputed")
    if convention.get("constrained"):
        raise ConfigError("tokens sampled under a grammar: their logprobs are of the constrained distribution")


def processed_logprobs(rows: Any, targets: Any, convention: Mapping[str, Any]) -> tuple[Any, Any]:
    """vLLM's sampler, step by step (vllm/v1/sample/sampler.py, ops/topk_topp_sampler.py), on fp32 logits."""
    import torch

    temperature = float(convention.get("temperature", 1.0))
    x = rows / (temperature if temperature >= _GREEDY_EPS else 1.0)
    boundary = torch.zeros(x.shape[0], dtype=torch.bool)
    min_p, top_k, top_p = (
        float(convention.get("min_p", 0.0)),
        int(convention.get("top_k", -1)),
        float(convention.get("top_p", 1.0)),
    )
    if temperature >= _GREEDY_EPS:  # greedy rows skip the truncations in vLLM
        if min_p > 0:
            probs = x.softmax(-1)
            threshold = probs.amax(-1, keepdim=True) * min_p
            boundary |= ((probs - threshold).abs() < BOUNDARY_EPS * threshold).any(-1)
            x = x.masked_fill(probs < threshold, float("-inf"))
        if 0 < top_k < x.shape[1]:
            top = x.topk(top_k + 1, dim=-1).values
            kth = top[:, top_k - 1 : top_k]
            boundary |= (kth[:, 0] - top[:, top_k]).abs() < BOUNDARY_EPS
            x = x.masked_fill(x < kth, float("-inf"))  # ties with the k-th are kept, as in vLLM
        if top_p < 1.0:
            ascending, order = x.sort(dim=-1, descending=False)
            cumulative = ascending.softmax(-1).cumsum(-1)
            drop = cumulative <= 1 - top_p
            drop[:, -1] = False  # at least one token is kept
            boundary |= ((cumulative - (1 - top_p)).abs() < BOUNDARY_EPS).any(-1)
            x = x.scatter(-1, order, ascending.masked_fill(drop, float("-inf")))
    return x.log_softmax(-1).gather(1, targets)[:, 0], boundary
