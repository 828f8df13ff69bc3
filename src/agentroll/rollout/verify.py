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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from agentroll.engines.verify import TOLERANCE, teacher_forced_logprobs
from agentroll.trajectory import Segment, Trajectory


async def verify_trajectories(engine: Any, trajs: Iterable[Trajectory], *, concurrency: int = 8) -> dict[str, Any]:
    """The report: max |delta| over trainable tokens, where it is, drift count, and `ok`."""
    trajs = list(trajs)
    limit = asyncio.Semaphore(concurrency)

    # The engine scores with the weights it holds now: tokens another version sampled are not its to check.
    await engine.models()  # started: a server has read its weights' version
    current = getattr(engine, "policy_version", 0)
    mismatch: dict[int | None, int] = {}

    async def one(traj: Trajectory, index: int, seg: Segment) -> tuple[float, int, int]:
        async with limit:
            skip = traj.constrained_mask(index)
            for i, v in enumerate(sampled_versions(traj, index)):
                if v is not None and v != current and seg.loss_mask[i] == 1 and not skip[i]:
                    skip[i] = 1
                    mismatch[v] = mismatch.get(v, 0) + 1
            return await _segment_delta(engine, seg, skip, session_id=f"verify-{traj.id}-{index}")

    # An engine's teacher-forced logprobs are the model's own (temperature 1): they can check the logprobs
    # of the sampling distribution only where that is the same distribution.
    needs_reference = [t for t in trajs if not engine_checkable(t.metadata.get("logprobs") or {})]
    trajs = [t for t in trajs if t not in needs_reference]
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
        "needs_reference": len(needs_reference),
        "constrained_tokens": constrained_tokens(trajs),
        **version_mismatch(
            mismatch,
            lambda v: (
                f"sampled by policy version {v}; the engine holds version {current} (use --reference hf, "
                "which loads each version's weights)"
            ),
        ),
    }
    if needs_reference:
        report["needs_reference_why"] = (
            f"{len(needs_reference)} trajectories hold processed logprobs of a distribution other than the model's "
            "own (temperature or truncation): an engine's teacher-forced logprobs cannot recompute them; "
            "use agentroll verify --reference hf"
        )
    report["ok"] = (
        max_delta <= TOLERANCE and drift == 0 and report["not_token_exact"] == 0 and not needs_reference
        and not mismatch
    )  # fmt: skip
    return report


def engine_checkable(convention: dict[str, Any]) -> bool:
    """True where the recorded logprobs are of the model's own distribution (raw, or processed without any
    temperature or truncation), which is what an engine's prompt_logprobs give."""
    return convention.get("mode") != "processed" or _plain(convention)


def _plain(convention: dict[str, Any]) -> bool:
    """Sampling that leaves the model's distribution as it is (temperature 0 is greedy: vLLM's logprobs at 1)."""
    return (
        convention.get("temperature", 1.0) in (0.0, 1.0)
        and convention.get("top_p", 1.0) == 1.0
        and convention.get("top_k", -1) in (-1, 0)
        and convention.get("min_p", 0.0) == 0.0
    )


def constrained_tokens(trajs: Iterable[Trajectory]) -> int:
    """Sampled tokens left out of the checks: drawn under guided decoding, their logprobs are of the
    constrained distribution, which no recomputation of the free policy gives (Turn.constrained)."""
    return sum(sum(t.constrained_mask(i)) for t in trajs for i in range(len(t.segments)))


async def _segment_delta(engine: Any, seg: Segment, skip: list[int], *, session_id: str) -> tuple[float, int, int]:
    """(max |sampled - teacher-forced| over the segment's mask-1 tokens not in `skip`, tokens checked, worst
    index)."""
    if all(m != 1 or s for m, s in zip(seg.loss_mask, skip, strict=True)):
        return 0.0, 0, -1
    first = seg.loss_mask.index(1)
    teacher = await teacher_forced_logprobs(engine, seg.token_ids[:first], seg.token_ids[first:], session_id=session_id)
    worst, at, checked = 0.0, -1, 0
    for offset, lp in enumerate(teacher):
        i = first + offset
        if seg.loss_mask[i] != 1 or skip[i]:
            continue
        checked += 1
        sampled = seg.logprobs[i]
        delta = math.inf if sampled is None else (0.0 if sampled == lp else abs(sampled - lp))
        if delta > worst or at < 0:
            worst, at = delta, i
    return worst, checked, at


# ---- against an independent reference (transformers), under each trajectory's recorded convention ----

REQUIRED_SHARE = 0.999  # of trainable tokens whose importance ratio must be 1 within TOLERANCE


class Scorer(Protocol):
    """What the reference check needs of a model (engines.hf_reference.HFReference)."""

    def score(self, token_ids: Sequence[int], positions: Sequence[int], convention: Mapping[str, Any]) -> Any: ...


@runtime_checkable
class VersionScorers(Protocol):
    """The reference model of each policy version, or None with the reason where its weights are not at hand."""

    def get(self, version: int | None) -> Scorer | None: ...

    def why_missing(self, version: int | None) -> str: ...


@dataclass
class OneScorer:
    """One model for every token, whatever its version: the caller vouches that it is the one that sampled them."""

    scorer: Scorer

    def get(self, version: int | None) -> Scorer | None:
        return self.scorer

    def why_missing(self, version: int | None) -> str:
        return ""


def verify_with_reference(
    reference: Scorer | VersionScorers,
    trajs: Iterable[Trajectory],
    *,
    fallback: dict[str, Any] | None = None,
    show: int = 8,
    on_segment: Callable[[Trajectory, int, list[int], Any], None] | None = None,
) -> dict[str, Any]:
    """Recompute every trainable token's logprob under the trajectory's `metadata["logprobs"]` convention
    (`fallback` for runs recorded before there was one) with the model of the policy version that sampled it
    (`reference`: VersionScorers, or one model for every token).

    Passes when >= 99.9% of the tokens have |ratio - 1| <= 1e-3, every token outside that is at a truncation
    boundary, the logprobs are of the sampling distribution (not raw ones at a temperature other than 1), no
    trajectory drifted, and every token's version could be checked: tokens of a version whose weights are not
    at hand are a version mismatch, counted apart, never compared with another version's model."""
    trajs = list(trajs)
    scorers = reference if isinstance(reference, VersionScorers) else OneScorer(reference)
    deltas: list[float] = []  # engine - reference, per trainable token
    outside: list[dict[str, Any]] = []
    boundary = outside_not_boundary = 0
    modes: dict[str, int] = {}
    problems: set[str] = set()
    by_version: dict[int | None, list[tuple[Trajectory, int, list[int], dict[str, Any]]]] = {}
    for traj in trajs:
        convention = traj.metadata.get("logprobs") or fallback or {}
        mode = str(convention.get("mode"))
        modes[mode] = modes.get(mode, 0) + 1
        if (problem := convention_problem(convention)) is not None:
            problems.add(problem)
        for index, seg in enumerate(traj.segments):
            skip, versions = traj.constrained_mask(index), sampled_versions(traj, index)
            for i, m in enumerate(seg.loss_mask):
                if m == 1 and i > 0 and not skip[i]:
                    jobs = by_version.setdefault(versions[i], [])
                    if not jobs or jobs[-1][0] is not traj or jobs[-1][1] != index:
                        jobs.append((traj, index, [], convention))
                    jobs[-1][2].append(i)
    mismatch: dict[int | None, int] = {}
    for version in sorted(by_version, key=lambda v: -1 if v is None else v):
        scorer = scorers.get(version)
        if scorer is None:
            mismatch[version] = sum(len(positions) for _, _, positions, _ in by_version[version])
            continue
        for traj, index, positions, convention in by_version[version]:
            seg = traj.segments[index]
            scores = scorer.score(seg.token_ids, positions, convention)
            if on_segment is not None:  # e.g. to keep the raw (temperature 1) logprobs alongside
                on_segment(traj, index, positions, scores)
            for i, ref, at_edge in zip(positions, scores.logprobs, scores.at_boundary, strict=True):
                sampled = seg.logprobs[i]
                delta = math.inf if sampled is None else (0.0 if sampled == ref else sampled - ref)
                deltas.append(delta)
                boundary += at_edge
                if abs(delta) > TOLERANCE:
                    outside_not_boundary += not at_edge
                    if len(outside) < show:
                        outside.append(
                            {"id": traj.id, "segment": index, "token_index": i, "token_id": seg.token_ids[i],
                             "version": version, "engine": sampled, "reference": ref, "at_boundary": at_edge}
                        )  # fmt: skip
    within = sum(abs(d) <= TOLERANCE for d in deltas)
    drift = sum(bool(t.metadata.get("drift")) for t in trajs)
    share = within / len(deltas) if deltas else 1.0
    report = {
        "trajectories": len(trajs),
        "tokens_checked": len(deltas),
        "logprobs_modes": modes,
        "max_abs_delta": max((abs(d) for d in deltas), default=0.0),
        "ratio": ratio_summary([d for d in deltas if math.isfinite(d)]),
        # sampled tokens that the reference's truncation excludes (or that carry no logprob): ratio infinite
        "outside_reference_support": sum(not math.isfinite(d) for d in deltas),
        "share_within_tolerance": share,
        "outside_tolerance": len(deltas) - within,
        "outside_not_at_boundary": outside_not_boundary,
        "at_boundary": boundary,
        "examples_outside": outside,
        "convention_problems": sorted(problems),
        "constrained_tokens": constrained_tokens(trajs),
        "drift_count": drift,
        "tolerance": TOLERANCE,
        "required_share": REQUIRED_SHARE,
        "versions_checked": sorted((v for v in by_version if v not in mismatch), key=lambda v: -1 if v is None else v),
        **version_mismatch(mismatch, scorers.why_missing),
    }
    report["ok"] = (
        share >= REQUIRED_SHARE and outside_not_boundary == 0 and not problems and drift == 0 and not mismatch
    )
    return report


def sampled_versions(traj: Trajectory, segment: int) -> list[int | None]:
    """Per token of a segment: the policy version that sampled it (None where not sampled or not said)."""
    out: list[int | None] = [None] * len(traj.segments[segment])
    for turn in traj.turns:
        if turn.segment == segment:
            out[turn.prompt_len : turn.prompt_len + len(turn.sampled_ids)] = turn.token_versions()
    return out


def version_mismatch(tokens: Mapping[int | None, int], why: Callable[[int | None], str]) -> dict[str, Any]:
    """The report's account of tokens left unchecked because their version's weights were not at hand."""
    if not tokens:
        return {"version_mismatch": 0}
    return {
        "version_mismatch": sum(tokens.values()),
        "version_mismatch_why": [f"{n} tokens: {why(v)}" for v, n in tokens.items()],
    }


def convention_problem(convention: dict[str, Any]) -> str | None:
    """Why these logprobs are not the behaviour policy's, or None. Raw logprobs are the sampling distribution's
    only at temperature 1 with nothing truncated."""
    mode = convention.get("mode")
    if mode == "raw" and not _plain(convention):
        knobs = " ".join(f"{k}={convention.get(k)}" for k in ("temperature", "top_p", "top_k", "min_p"))
        return (
            f"raw logprobs (temperature 1, untruncated) for tokens sampled at {knobs}: "
            "not the sampling distribution (run the engine with processed logprobs)"
        )
    if mode in ("unknown", "mixed", "None"):
        return f"logprobs mode {mode!r}: the engine did not say which distribution they are of (checked as processed)"
    return None


def ratio_summary(deltas: list[float]) -> dict[str, float]:
    """min / p01 / median / p99 / max of the importance ratio exp(engine - reference)."""
    if not deltas:
        return {}
    ratios = sorted(math.exp(min(d, 700.0)) for d in deltas)

    def at(q: float) -> float:
        return ratios[min(len(ratios) - 1, int(q * (len(ratios) - 1) + 0.5))]

    return {"min": ratios[0], "p01": at(0.01), "median": at(0.5), "p99": at(0.99), "max": ratios[-1]}
