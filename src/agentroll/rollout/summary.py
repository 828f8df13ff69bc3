"""Run statistics from trajectory records: stop reasons, rewards, GRPO groups, throughput, drift."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agentroll.agent.episode import SKIPPED
from agentroll.agent.rewards import REWARD_ERROR, answer_from_tool, group_stats

# Stop reasons that mean something went wrong (the episode is still data, but a user should look).
ERROR_STOPS = frozenset({"engine_error", "tool_failure", "timeout", "render_error", "environment_error", "error"})


@dataclass(slots=True)
class Tally:
    """What the summary needs from each trajectory; kept small so a big run's tally fits in memory."""

    stops: Counter[str] = field(default_factory=Counter)
    rewards: list[float] = field(default_factory=list)
    components: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    component_errors: Counter[str] = field(default_factory=Counter)  # episodes whose component was None
    reward_errors: int = 0  # episodes with metadata["reward_error"]: a reward that could not be computed
    groups: dict[str, dict[int, float]] = field(default_factory=lambda: defaultdict(dict))
    sampled_tokens: int = 0
    drift: int = 0
    errors: int = 0
    tool_calls: int = 0  # tool results (calls that ran, or were answered with an error)
    tool_errors: int = 0
    calls_made: int = 0  # calls the model wrote (parsed, malformed ones included)
    calls_ran: int = 0  # tool results without an error
    answers_from_tools: int = 0  # episodes whose final answer is a tool result (agent.rewards.answer_from_tool)
    logprobs_modes: Counter[str] = field(default_factory=Counter)
    policy_versions: Counter[int] = field(default_factory=Counter)  # sampled tokens per version
    stale: int = 0  # episodes kept past max_staleness (metadata["stale"])

    def add(self, record: dict[str, Any]) -> int:
        """Count one trajectory record (a `Trajectory.to_dict()`); returns its sampled token count."""
        self.stops[record.get("stop_reason", "")] += 1
        sampled = sum(len(t.get("sampled_ids", [])) for t in record.get("turns", []))
        self.sampled_tokens += sampled
        self.drift += bool(record.get("metadata", {}).get("drift"))
        self.errors += record.get("stop_reason") in ERROR_STOPS
        results = record.get("tool_results", [])
        self.tool_calls += len(results)
        self.tool_errors += sum(bool(r.get("is_error")) and not _skipped(r) for r in results)
        self.calls_ran += sum(not r.get("is_error") for r in results)
        self.calls_made += sum(len(t.get("tool_calls") or ()) for t in record.get("turns", []))
        said = [m.get("content") for m in record.get("messages", []) if m.get("role") == "assistant"]
        self.answers_from_tools += bool(said) and answer_from_tool(said[-1], (r.get("content", "") for r in results))
        if record.get("reward") is not None:
            self.rewards.append(float(record["reward"]))
            self.groups[record.get("task_id", "")][record.get("sample_index", 0)] = float(record["reward"])
        for name, value in record.get("rewards", {}).items():
            if value is None:
                self.component_errors[name] += 1
            else:
                self.components[name].append(float(value))
        meta = record.get("metadata", {})
        self.reward_errors += bool(meta.get(REWARD_ERROR))
        self.logprobs_modes[str((meta.get("logprobs") or {}).get("mode"))] += 1
        self.stale += bool(meta.get("stale"))
        for t in record.get("turns", []):
            if t.get("policy_version") is not None:
                starts = [(0, t["policy_version"]), *(t.get("version_changes") or [])]
                ends = [i for i, _ in starts[1:]] + [len(t.get("sampled_ids", []))]
                for (start, version), end in zip(starts, ends, strict=True):
                    self.policy_versions[int(version)] += end - start
        return sampled

    def mean_reward(self) -> float | None:
        return statistics.fmean(self.rewards) if self.rewards else None


def summarize(tally: Tally, *, planned: int, new_episodes: int, new_tokens: int, wall_s: float) -> dict[str, Any]:
    """The summary.json object. Throughput counts only this invocation's episodes."""
    return {
        "episodes": sum(tally.stops.values()),
        "planned": planned,
        "new_episodes": new_episodes,
        "stop_reasons": dict(tally.stops.most_common()),
        "errors": tally.errors,
        "drift_count": tally.drift,
        "reward": _stats(tally.rewards),  # over the episodes that have one (reward_errors do not)
        "reward_errors": tally.reward_errors,
        "reward_components": {
            name: {**_stats(tally.components.get(name, ())), "errors": tally.component_errors[name]}
            for name in sorted(tally.components.keys() | tally.component_errors.keys())
        },
        "tool_calls": tally.tool_calls,
        "tool_errors": tally.tool_errors,
        "tool_calls_made": tally.calls_made,
        "tool_calls_ran": tally.calls_ran,
        "answers_from_tools": tally.answers_from_tools,
        "sampled_tokens": tally.sampled_tokens,
        "wall_s": round(wall_s, 3),
        "sampled_tokens_per_s": round(new_tokens / wall_s, 2) if wall_s > 0 else None,
        "episodes_per_s": round(new_episodes / wall_s, 4) if wall_s > 0 else None,
        "groups": _groups(tally.groups),
        "logprobs_modes": dict(tally.logprobs_modes),
        "sampled_tokens_by_policy_version": {str(v): n for v, n in sorted(tally.policy_versions.items())},
        "stale_kept": tally.stale,
    }


def _stats(values: Iterable[float]) -> dict[str, float | int | None]:
    values = list(values)
    if not values:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def _groups(groups: dict[str, dict[int, float]]) -> dict[str, Any]:
    """GRPO statistics per task: mean, std and each sample's advantage (keyed by sample index); a sample
    without a reward is not in its group's statistics."""
    out: dict[str, Any] = {}
    for task_id, by_sample in groups.items():
        order = sorted(by_sample)
        stats = group_stats([by_sample[i] for i in order])
        out[task_id] = {
            "n": len(order),
            "mean": stats["mean"],
            "std": stats["std"],
            "advantages": dict(zip((str(i) for i in order), stats["advantages"], strict=True)),
        }
    return out


def _skipped(result: dict[str, Any]) -> bool:
    return (result.get("metadata") or {}).get("status") == SKIPPED
