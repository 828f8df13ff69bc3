"""How good is a checkpoint at a run config's tasks: pass@k, mean reward, tool use, and a paired comparison.

    scores = score_run(load_trajectories(run_dir), tasks, metric="exact_match")
    report = evaluate(scores, ks=(1, 2, 4))
    diff = compare(scores_base, scores_trained)     # same tasks, same seeds: a paired difference per task

An episode succeeds when its `metric` (a reward component, or "reward" for the total) is at least `threshold`;
an episode whose metric could not be computed (None: a reward error) is counted apart, never as a failure.
pass@k is the unbiased estimator of Chen et al. (2021) over each task's n samples; intervals are 95% percentile
bootstraps over tasks (a task's samples stay together), seeded, so a report is reproducible.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agentroll.agent import Task
from agentroll.agent.rewards import answer_from_tool, last_answer
from agentroll.trajectory import Trajectory

RESAMPLES = 10_000


@dataclass(frozen=True, slots=True)
class EpisodeScore:
    task_id: str
    sample: int
    success: bool | None  # None: the metric could not be computed (reward_error)
    reward: float | None
    category: str
    calls_made: int
    calls_ran: int
    answer_from_tool: bool
    stop_reason: str


def score_run(
    trajectories: Iterable[Trajectory], tasks: Sequence[Task], *, metric: str, threshold: float = 1.0, by: str | None
) -> list[EpisodeScore]:
    """One score per episode; `by` names a dataset field whose value is the episode's category."""
    rows = {t.id: t.metadata.get("row") or {} for t in tasks}
    out = []
    for traj in trajectories:
        value = traj.reward if metric == "reward" else traj.rewards.get(metric)
        out.append(
            EpisodeScore(
                task_id=traj.task_id,
                sample=traj.sample_index,
                success=None if value is None else value >= threshold,
                reward=traj.reward,
                category=str(rows.get(traj.task_id, {}).get(by, "?")) if by else "all",
                calls_made=sum(len(t.tool_calls) for t in traj.turns),
                calls_ran=sum(not r.is_error for r in traj.tool_results),
                answer_from_tool=answer_from_tool(last_answer(traj), (r.content for r in traj.tool_results)),
                stop_reason=traj.stop_reason,
            )
        )
    return out


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples drawn without replacement from n, c of them correct, is correct)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per task (have {n})")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def evaluate(scores: Sequence[EpisodeScore], ks: Sequence[int] = (1,)) -> dict[str, Any]:
    """The report of one checkpoint: overall and per category."""
    by_category: dict[str, list[EpisodeScore]] = defaultdict(list)
    for s in scores:
        by_category[s.category].append(s)
    report = _report(scores, ks)
    if len(by_category) > 1 or "all" not in by_category:
        report["categories"] = {name: _report(group, ks) for name, group in sorted(by_category.items())}
    return report


def compare(base: Sequence[EpisodeScore], other: Sequence[EpisodeScore]) -> dict[str, Any]:
    """other - base on the tasks both scored: the mean per-task difference in success rate and in reward, each
    with its 95% paired bootstrap interval (resampling tasks, both checkpoints' samples of a task together)."""
    a, b = _by_task(base), _by_task(other)
    shared = sorted(a.keys() & b.keys())
    success = [_rate(b[t]) - _rate(a[t]) for t in shared if _rate(a[t]) is not None and _rate(b[t]) is not None]
    reward = [_mean_reward(b[t]) - _mean_reward(a[t]) for t in shared
              if _mean_reward(a[t]) is not None and _mean_reward(b[t]) is not None]  # fmt: skip
    return {
        "tasks": len(shared),
        "only_in_one": len(a.keys() ^ b.keys()),
        "success_rate_difference": _mean_ci(success),
        "reward_difference": _mean_ci(reward),
    }


def _report(scores: Sequence[EpisodeScore], ks: Sequence[int]) -> dict[str, Any]:
    tasks = _by_task(scores)
    graded = {t: [s for s in group if s.success is not None] for t, group in tasks.items()}
    n_min = min((len(g) for g in graded.values() if g), default=0)
    pass_k = {}
    for k in ks:
        if k <= n_min:
            values = [pass_at_k(len(g), sum(s.success for s in g), k) for g in graded.values() if g]
            pass_k[f"pass@{k}"] = _mean_ci(values)
    episodes = len(scores)
    successes = [s for s in scores if s.success]
    rewards = [r for r in (_mean_reward(g) for g in tasks.values()) if r is not None]
    return {
        "tasks": len(tasks),
        "episodes": episodes,
        "unscored": sum(s.success is None for s in scores),  # the metric could not be computed (reward_error)
        **pass_k,
        "reward": _mean_ci(rewards),  # the mean of per-task mean rewards, interval over tasks
        "tool_calls_per_episode": _ratio(sum(s.calls_made for s in scores), episodes),
        "tool_calls_ran_per_episode": _ratio(sum(s.calls_ran for s in scores), episodes),
        "episodes_with_a_call_that_ran": _ratio(sum(s.calls_ran > 0 for s in scores), episodes),
        "answers_from_tools": _ratio(sum(s.answer_from_tool for s in scores), episodes),
        "successes_from_tools": _ratio(sum(s.answer_from_tool for s in successes), len(successes)),
        "stop_reasons": dict(sorted(Counter(s.stop_reason for s in scores).items())),
    }


def _by_task(scores: Iterable[EpisodeScore]) -> dict[str, list[EpisodeScore]]:
    out: dict[str, list[EpisodeScore]] = defaultdict(list)
    for s in scores:
        out[s.task_id].append(s)
    return out


def _rate(group: Sequence[EpisodeScore]) -> float | None:
    graded = [s.success for s in group if s.success is not None]
    return sum(graded) / len(graded) if graded else None


def _mean_reward(group: Sequence[EpisodeScore]) -> float | None:
    values = [s.reward for s in group if s.reward is not None]
    return statistics.fmean(values) if values else None


def _mean_ci(values: Sequence[float]) -> dict[str, float | int | None]:
    """The mean of per-task values with a 95% percentile bootstrap interval over tasks."""
    if not values:
        return {"mean": None, "low": None, "high": None, "n": 0}
    low, high = bootstrap_interval(values, statistics.fmean)
    return {"mean": statistics.fmean(values), "low": low, "high": high, "n": len(values)}


def bootstrap_interval(
    values: Sequence[float], stat: Callable[[Sequence[float]], float], *, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    rng = random.Random(seed)
    n = len(values)
    draws = sorted(stat([values[rng.randrange(n)] for _ in range(n)]) for _ in range(RESAMPLES))
    tail = (1 - level) / 2
    return draws[int(tail * (RESAMPLES - 1))], draws[math.ceil((1 - tail) * (RESAMPLES - 1))]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
