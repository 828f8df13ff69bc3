"""Rewards: functions of a finished trajectory and its task. Several named components and a total.

A reward function is `fn(trajectory, task) -> float`. Built-ins, by name:
- exact_match: the final answer (last number, `#### N` or `\\boxed{N}` in the last assistant message)
  equals `task.answer`, compared as numbers when both parse, else as stripped strings;
- recall_at_k: share of `task.metadata["relevant_doc_ids"]` found among the document IDs the episode's
  tools returned in their metadata (`doc_ids`), first k of each result (k from the name's argument);
- format: 1 when every tool call parsed and the episode ended on its own ("done");
- used_tools: 1 when at least one tool call ran;
- well_formed_call: 1 when the first turn made a tool call and every call of the episode parsed.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentroll.agent.task import Task
from agentroll.errors import UnknownNameError
from agentroll.trajectory import Trajectory

RewardFn = Callable[[Trajectory, Task], float]

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_answer(text: str | None) -> str | None:
    """The answer a response commits to: `#### N`, `\\boxed{N}`, else its last number."""
    if not text:
        return None
    for pattern in (r"####\s*([^\n]+)", r"\\boxed\{([^}]*)\}"):
        found = re.findall(pattern, text)
        if found:
            return found[-1].strip()
    numbers = _NUMBER.findall(text)
    return numbers[-1] if numbers else None


def _as_number(s: Any) -> float | None:
    try:
        return float(str(s).replace(",", "").replace("$", "").strip().rstrip("."))
    except ValueError:
        return None


def exact_match(traj: Trajectory, task: Task) -> float:
    last = next((m for m in reversed(traj.messages) if m.role == "assistant"), None)
    got = final_answer(last.content if last else None)
    if got is None or task.answer is None:
        return 0.0
    a, b = _as_number(got), _as_number(task.answer)
    if a is not None and b is not None:
        return float(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9))
    return float(got.strip() == str(task.answer).strip())


def recall_at_k(k: int | None = None) -> RewardFn:
    def recall(traj: Trajectory, task: Task) -> float:
        relevant = set(task.metadata.get("relevant_doc_ids") or [])
        if not relevant:
            return 0.0
        found: set[str] = set()
        for result in traj.tool_results:
            ids = result.metadata.get("doc_ids") or []
            found.update(str(i) for i in (ids[:k] if k else ids))
        return len(relevant & found) / len(relevant)

    return recall


def format_ok(traj: Trajectory, task: Task) -> float:
    parsed_ok = all(c.status == "ok" and not c.salvaged for t in traj.turns for c in t.tool_calls)
    return float(parsed_ok and traj.stop_reason == "done")


def used_tools(traj: Trajectory, task: Task) -> float:
    return float(bool(traj.tool_results))


def well_formed_call(traj: Trajectory, task: Task) -> float:
    calls = [c for t in traj.turns for c in t.tool_calls]
    # a call a lenient parse repaired (`salvaged`) was usable, not well-formed
    return float(
        bool(traj.turns and traj.turns[0].tool_calls) and all(c.status == "ok" and not c.salvaged for c in calls)
    )


def environment_reward(component: str) -> RewardFn:
    """`env:NAME`: the component NAME of the episode environment's own score (agent/lifecycle.py)."""

    def reward(traj: Trajectory, task: Task) -> float:
        return float((traj.metadata.get("environment_rewards") or {}).get(component, 0.0))

    return reward


def get_reward(name: str) -> RewardFn:
    """`exact_match`, `format`, `used_tools`, `well_formed_call`, `recall_at_k` or `recall_at_k:5`, `env:NAME`."""
    base, _, arg = name.partition(":")
    fixed: dict[str, RewardFn] = {
        "exact_match": exact_match,
        "format": format_ok,
        "used_tools": used_tools,
        "well_formed_call": well_formed_call,
    }
    if base in fixed and not arg:
        return fixed[base]
    if base == "recall_at_k":
        return recall_at_k(int(arg) if arg else None)
    if base == "env" and arg:
        return environment_reward(arg)
    raise UnknownNameError("reward", name, [*fixed, "recall_at_k[:K]", "env:NAME"])


def score(traj: Trajectory, task: Task, weights: Mapping[str, float], fns: Mapping[str, RewardFn]) -> None:
    """Fill `traj.rewards` (each component) and `traj.reward` (the weighted total)."""
    traj.rewards = {name: float(fns[name](traj, task)) for name in weights}
    traj.reward = sum(weights[name] * value for name, value in traj.rewards.items())


def group_stats(rewards_G: Sequence[float]) -> dict[str, Any]:
    """GRPO-style statistics of one task's n samples: mean, std and per-sample advantages."""
    mean = statistics.fmean(rewards_G) if rewards_G else 0.0
    std = statistics.pstdev(rewards_G) if len(rewards_G) > 1 else 0.0
    advantages_G = [(r - mean) / (std + 1e-6) for r in rewards_G]
    return {"mean": mean, "std": std, "advantages": advantages_G}
