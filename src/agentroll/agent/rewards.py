"""Rewards: functions of a finished trajectory and its task. Several named components and a total.

A reward function is `fn(trajectory, task) -> float`. Built-ins, by name:
- exact_match: the final answer (last number, `#### N` or `\\boxed{N}` in the last assistant message)
  equals `task.answer`, compared as numbers when both parse, else as stripped strings;
- recall_at_k: share of `task.metadata["relevant_doc_ids"]` found among the document IDs the episode's
  tools returned in their metadata (`doc_ids`), first k of each result (k from the name's argument);
- format: 1 when every tool call parsed and the episode ended on its own ("done");
- used_tools: 1 when at least one tool call ran;
- well_formed_call: 1 when the first turn made a tool call and every call of the episode parsed;
- env:NAME: the component NAME of the episode environment's own score.

A reward that cannot be computed is never a number: a function that raises (the environment's scorer
included) or returns something that is not a finite number gives the component None, the total None (unless
its weight is 0) and `metadata["reward_error"]` ({component: error}); the run summary counts them
(docs/environments.md).
"""

from __future__ import annotations

import math
import re
import statistics
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from agentroll.agent.task import Task
from agentroll.errors import ConfigError, UnknownNameError
from agentroll.trajectory import Trajectory

RewardFn = Callable[[Trajectory, Task], float]
REWARD_ERROR = "reward_error"  # metadata key: {component: "Type: message"} for each component that failed

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
    got = final_answer(last_answer(traj))
    if got is None or task.answer is None:
        return 0.0
    a, b = _as_number(got), _as_number(task.answer)
    if a is not None and b is not None:
        return float(_close(a, b))
    return float(got.strip() == str(task.answer).strip())


def answer_from_tool(answer_text: str | None, results: Iterable[str]) -> bool:
    """Whether the answer a response commits to (`final_answer`) was read off a tool result: it equals a
    result's text or one of the numbers in it (the calculator's `31` behind `#### 31`)."""
    got = final_answer(answer_text)
    if got is None:
        return False
    number = _as_number(got)
    for text in results:
        if got.strip() == text.strip():
            return True
        if number is not None and any(_close(number, _as_number(n)) for n in _NUMBER.findall(text)):
            return True
    return False


def _close(a: float, b: float | None) -> bool:
    return b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def last_answer(traj: Trajectory) -> str | None:
    """The text of the episode's last assistant message (what `exact_match` grades)."""
    last = next((m for m in reversed(traj.messages) if m.role == "assistant"), None)
    return last.content if last else None


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
    """`env:NAME`: the component NAME of the episode environment's own score (agent/lifecycle.py). Raises when
    the environment could not score the episode or its score has no such component (never a silent 0)."""

    def reward(traj: Trajectory, task: Task) -> float:
        scored = traj.metadata.get("environment_rewards")
        if scored is None:
            failed = (traj.metadata.get("environment") or {}).get("score_error")
            raise RuntimeError(f"the environment's score failed: {failed}" if failed else
                               f"no environment score (the episode stopped: {traj.stop_reason})")  # fmt: skip
        if component not in scored:
            raise LookupError(f"the environment's score has no {component!r} (it has {sorted(scored)})")
        return float(scored[component])

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


def check_environment_rewards(names: Iterable[str], environment: str, produced: Collection[str] | None) -> None:
    """ConfigError, at the start of a run, for an `env:NAME` reward whose NAME the run's environment does not
    declare (`produced`: its factory's `reward_names`): a misspelt name would otherwise fail every episode. A
    factory that declares nothing (None) is warned about: each episode's missing component is a reward_error."""
    wanted = [n for n in names if n.startswith("env:")]
    if produced is None:
        if wanted:
            warnings.warn(
                f"environment {environment!r} declares no reward_names: rewards {', '.join(wanted)} cannot be checked "
                "before the run (a component its score lacks is None, with reward_error, in every episode)",
                stacklevel=2,
            )
        return
    unknown = [n for n in wanted if n.removeprefix("env:") not in produced]
    if unknown:
        offers = ", ".join(f"env:{n}" for n in sorted(produced)) or "none (its reward_names is empty)"
        raise ConfigError(f"rewards {', '.join(unknown)}: environment {environment!r} scores no such component; "
                          f"it offers: {offers}")  # fmt: skip


def score(traj: Trajectory, task: Task, weights: Mapping[str, float], fns: Mapping[str, RewardFn]) -> None:
    """Fill `traj.rewards` (each component) and `traj.reward` (the weighted total).

    A component whose function raises or gives no finite number is None, with its error in
    `metadata["reward_error"]`; the total is then None too (unless that component's weight is 0)."""
    rewards: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    for name in weights:
        try:
            value = float(fns[name](traj, task))
            if not math.isfinite(value):
                raise ValueError(f"not a finite number: {value}")
        except Exception as e:  # any scorer's fault, built-in or environment: recorded, the run goes on
            rewards[name], errors[name] = None, f"{type(e).__name__}: {e}"
        else:
            rewards[name] = value
    traj.rewards = rewards
    traj.metadata.pop(REWARD_ERROR, None)
    if errors:
        traj.metadata[REWARD_ERROR] = errors
    if any(weights[name] != 0 for name in errors):
        traj.reward = None
    else:
        traj.reward = sum(weights[name] * value for name, value in rewards.items() if value is not None)


def group_stats(rewards_G: Sequence[float | None]) -> dict[str, Any]:
    """GRPO-style statistics of one task's n samples: mean, std and per-sample advantages. A sample without a
    reward (None: its scorer failed) is left out of the mean and std and has no advantage (None)."""
    scored = [r for r in rewards_G if r is not None]
    mean = statistics.fmean(scored) if scored else 0.0
    std = statistics.pstdev(scored) if len(scored) > 1 else 0.0
    advantages_G = [None if r is None else (r - mean) / (std + 1e-6) for r in rewards_G]
    return {"mean": mean, "std": std, "advantages": advantages_G}
