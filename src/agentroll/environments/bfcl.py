"""BFCL v4 (the Berkeley Function Calling Leaderboard, PyPI `bfcl-eval`) as agentroll environments.

Everything that decides a score is BFCL's own code, imported from the installed wheel: its test entries and
possible answers (`load_dataset_entry`, `load_ground_truth_entry`), its conversion of function docs to
OpenAI tools (`convert_to_tool`, as its OpenAI function-calling handlers call it), its executor of the
multi-turn classes (`execute_multi_turn_func_call`) and its checkers (`ast_checker`, `multi_turn_checker`).
agentroll plays the episodes and hands the parsed calls over in the shapes BFCL's handlers produce.

- `bfcl` (single-turn: simple_python, multiple, parallel, parallel_multiple, irrelevance, live_*): the
  entry's functions are the episode's tools; the model's first turn is the answer; the reward
  `env:bfcl_valid` is BFCL's AST checker on its calls (irrelevance: valid when it makes no call).
- `bfcl_multi_turn` (multi_turn_base, multi_turn_long_context, multi_turn_miss_param): each episode gets fresh
  instances of the entry's classes (GorillaFileSystem, TradingBot, VehicleControl, ...) loaded from its
  initial_config, executed by BFCL's executor; the entry's user turns are fed one after the other (a turn
  ends when the model answers without a call); BFCL's multi-turn checker (state and response checks
  after every turn) scores the episode.

A run config reads the entries with `dataset: {format: bfcl, path: CATEGORY}`. `table(run_dirs)` prints
BFCL's per-category accuracy (correct / total) of finished runs.
"""

from __future__ import annotations

import itertools
import os
import re
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentroll.agent.task import Task
from agentroll.engines.checkpoint import cache_dir
from agentroll.errors import ConfigError
from agentroll.tools import Toolset
from agentroll.tools.base import ToolOutput
from agentroll.trajectory import Trajectory
from agentroll.types import Message, ToolResult, ToolSpec

SINGLE_TURN = (
    "simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance",
    "live_simple", "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance",
)  # fmt: skip
# miss_func adds functions mid-episode (a new tool list is a new render); not played here.
MULTI_TURN = ("multi_turn_base", "multi_turn_long_context", "multi_turn_miss_param")
# BFCL's AST checker reads one thing of its model registry entry: whether the model's tool names had "." turned
# into "_" (OpenAI names cannot hold a dot). agentroll sends tools as BFCL's OpenAI function-calling handlers
# do (convert_to_tool, dots replaced), so the checker is told so through an entry with underscore_to_dot.
CHECKER_MODEL = "gpt-4o-2024-11-20-FC"
NOT_EXECUTED = "(BFCL single-turn: the call is scored, not executed)"


def bfcl() -> Any:
    """The installed bfcl_eval modules agentroll uses (its lock files go to the agentroll cache, not site-packages)."""
    os.environ.setdefault("BFCL_PROJECT_ROOT", str(cache_dir() / "bfcl"))
    try:
        from bfcl_eval import utils
        from bfcl_eval.constants import enums, type_mappings
        from bfcl_eval.eval_checker.ast_eval import ast_checker
        from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_checker, multi_turn_utils
        from bfcl_eval.model_handler import utils as handler_utils
    except ImportError as e:
        raise ConfigError(f"BFCL environments need bfcl-eval: bash scripts/install_bfcl.sh ({e})") from e
    return _Modules(utils, enums, type_mappings, ast_checker, multi_turn_checker, multi_turn_utils, handler_utils)


@dataclass(frozen=True)
class _Modules:
    utils: Any
    enums: Any
    type_mappings: Any
    ast_checker: Any
    multi_turn_checker: Any
    multi_turn_utils: Any
    handler_utils: Any


def rows(categories: str) -> Iterator[dict[str, Any]]:
    """BFCL's entries with their possible answers: the dataset rows of `format: bfcl`.

    `categories`: "CATEGORY[:N],..." (N: the first N entries of that category). A row: id, category, messages
    (the first user turn), turns (every user turn), function (BFCL's docs), ground_truth (None for the
    relevance categories), initial_config and involved_classes (multi-turn)."""
    for item in categories.split(","):
        category, _, n = item.strip().partition(":")
        yield from itertools.islice(_category_rows(category), int(n) if n else None)


def _category_rows(category: str) -> Iterator[dict[str, Any]]:
    if category not in SINGLE_TURN + MULTI_TURN:
        raise ConfigError(f"dataset: BFCL category {category!r} is not played here (one of {SINGLE_TURN + MULTI_TURN})")
    b = bfcl()
    entries = b.utils.load_dataset_entry(category)
    answers = (
        {}
        if "relevance" in category
        else {a["id"]: a["ground_truth"] for a in b.utils.load_ground_truth_entry(category)}
    )
    for entry in entries:
        yield {
            **entry,
            "category": category,
            "messages": entry["question"][0],
            "turns": entry["question"],
            "ground_truth": answers.get(entry["id"]),
        }


def tool_specs(functions: Sequence[dict[str, Any]]) -> list[ToolSpec]:
    """BFCL function docs as the tools its OpenAI function-calling handlers send (JSON Schema types, "." -> "_")."""
    b = bfcl()
    tools = b.handler_utils.convert_to_tool(
        list(functions), b.type_mappings.GORILLA_TO_OPENAPI, b.enums.ModelStyle.OPENAI_COMPLETIONS
    )
    return [
        ToolSpec(name=t["function"]["name"], description=t["function"].get("description", ""),
                 input_schema=t["function"]["parameters"])
        for t in tools
    ]  # fmt: skip


@dataclass
class _Tool:
    """One BFCL function as an agentroll tool: `run` is what the episode's BFCL state does with the call."""

    spec: ToolSpec
    run_call: Any  # (name, arguments) -> ToolOutput
    timeout_s: float | None = None

    async def run(self, arguments: dict[str, Any]) -> Any:
        return self.run_call(self.spec.name, arguments)


def _row(task: Task) -> dict[str, Any]:
    row = task.metadata.get("row")
    if not isinstance(row, dict) or "turns" not in row:
        raise ConfigError(f"task {task.id}: not a BFCL row (read the dataset with `format: bfcl`)")
    return row


def calls_of(message: Message) -> list[dict[str, dict[str, Any]]]:
    """An assistant turn's calls as BFCL's function-calling handlers decode them: [{name: arguments}]."""
    return [{c.name: dict(c.arguments)} for c in message.tool_calls]


# ---- single-turn ----------------------------------------------------------------------------------------


@dataclass
class SingleTurnEpisode:
    row: dict[str, Any]
    tools: Toolset | None = None
    messages: Sequence[Message] | None = None

    async def respond(
        self, task: Task, messages: Sequence[Message], results: Sequence[ToolResult]
    ) -> list[Message] | None:
        return None  # the first turn is the answer

    async def score(self, task: Task, traj: Trajectory) -> dict[str, float]:
        answer = next((m for m in traj.messages[len(task.messages) :] if m.role == "assistant"), None)
        verdict = check_single_turn(self.row, calls_of(answer) if answer is not None else [])
        traj.metadata["bfcl"] = {"category": self.row["category"], **verdict}
        return {"bfcl_valid": float(verdict["valid"])}

    async def teardown(self) -> None:
        return None


def check_single_turn(row: dict[str, Any], calls: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """BFCL's verdict on one single-turn answer, as its eval runner reaches it for a function-calling model."""
    b = bfcl()
    category = row["category"]
    if "relevance" in category:  # relevance_file_runner: did the model call (relevance) or not (irrelevance)
        called = not b.utils.is_empty_output(calls)
        valid = not called if "irrelevance" in category else called
        return {"valid": valid, "error_type": None if valid else f"{category}:called={called}"}
    if not b.utils.is_function_calling_format_output(calls):
        return {"valid": False, "error_type": "ast_decoder:decoder_wrong_output_format"}
    result = b.ast_checker.ast_checker(
        row["function"], calls, row["ground_truth"], b.enums.Language.PYTHON, category, CHECKER_MODEL
    )
    valid = bool(result["valid"])
    return {"valid": valid, "error_type": None if valid else result.get("error_type")}


class BFCLSingleTurn:
    """BFCL v4 single-turn: the entry's functions as tools, BFCL's AST checker as the reward (env:bfcl_valid)."""

    name = "bfcl"
    reward_names = ("bfcl_valid",)

    def __init__(self, max_concurrent: int | None = None):
        self.max_concurrent = max_concurrent

    async def setup(self, task: Task, episode_id: str) -> SingleTurnEpisode:
        row = _row(task)
        tools = [_Tool(spec, lambda name, args: ToolOutput(NOT_EXECUTED)) for spec in tool_specs(row["function"])]
        return SingleTurnEpisode(row, tools=Toolset(tools))


# ---- multi-turn -----------------------------------------------------------------------------------------


@dataclass
class MultiTurnEpisode:
    """One episode's BFCL state: the entry's class instances, held by BFCL's executor under `instance_prefix`."""

    row: dict[str, Any]
    instance_prefix: str
    tools: Toolset | None = None
    messages: Sequence[Message] | None = None
    next_turn: int = 1
    executed: list[str] = field(default_factory=list)

    def execute(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        b = bfcl()
        call = b.handler_utils.convert_to_function_call([{name: arguments}])[0]
        results, _ = b.multi_turn_utils.execute_multi_turn_func_call(
            [call], self.row["initial_config"], self.row["involved_classes"], self.instance_prefix,
            self.row["id"], long_context=_long_context(self.row),
        )  # fmt: skip
        self.executed.append(call)
        out = results[0]
        return ToolOutput(out, metadata={"bfcl_call": call}, is_error=out.startswith("Error during execution"))

    async def respond(
        self, task: Task, messages: Sequence[Message], results: Sequence[ToolResult]
    ) -> list[Message] | None:
        if results:  # the model is still working on this user turn
            return [r.to_message() for r in results]
        turns = self.row["turns"]
        if self.next_turn >= len(turns):
            return None  # every user turn has been answered
        self.next_turn += 1
        return [Message.from_openai(m) for m in turns[self.next_turn - 1]]

    async def score(self, task: Task, traj: Trajectory) -> dict[str, float]:
        verdict = check_multi_turn(self.row, decoded_turns(traj, len(task.messages)), self.instance_prefix)
        traj.metadata["bfcl"] = {"category": self.row["category"], **verdict}
        return {"bfcl_valid": float(verdict["valid"])}

    async def teardown(self) -> None:
        forget_instances(self.instance_prefix)


def _long_context(row: dict[str, Any]) -> bool:
    return "long_context" in row["category"] or "composite" in row["category"]


def decoded_turns(traj: Trajectory, opening: int) -> list[list[list[str]]]:
    """The episode's calls as BFCL's multi-turn runner decodes them: per user turn, per step (an assistant
    message with calls), the calls as executable strings. Steps without a call are dropped, as BFCL drops them."""
    b = bfcl()
    turns: list[list[list[str]]] = [[]]
    for m in traj.messages[opening:]:
        if m.role == "user":
            turns.append([])
        elif m.role == "assistant" and m.tool_calls:
            turns[-1].append(b.handler_utils.convert_to_function_call(calls_of(m)))
    return turns


def check_multi_turn(row: dict[str, Any], turns: list[list[list[str]]], instance_prefix: str) -> dict[str, Any]:
    """BFCL's verdict on one multi-turn episode (its eval runner's _evaluate_single_multi_turn_entry)."""
    b = bfcl()
    truth = row["ground_truth"]
    if len(turns) != len(truth):  # the episode ended before its last user turn
        return {"valid": False, "error_type": "multi_turn:force_terminated"}
    entry = {k: row[k] for k in ("id", "initial_config", "involved_classes")}
    result = b.multi_turn_checker.multi_turn_checker(turns, truth, entry, row["category"], instance_prefix)
    valid = bool(result["valid"])
    return {"valid": valid, "error_type": None if valid else result.get("error_type")}


def forget_instances(prefix: str) -> None:
    """Drop every class instance BFCL's executor holds for one episode (its own, the checker's, the ground truth's)."""
    held = vars(bfcl().multi_turn_utils)
    for name in [n for n in held if n.startswith(prefix)]:
        del held[name]


class BFCLMultiTurn:
    """BFCL v4 multi-turn: fresh instances of the entry's classes per episode, its user turns, BFCL's checker."""

    name = "bfcl_multi_turn"
    reward_names = ("bfcl_valid",)

    def __init__(self, max_concurrent: int | None = None):
        self.max_concurrent = max_concurrent

    async def setup(self, task: Task, episode_id: str) -> MultiTurnEpisode:
        row = _row(task)
        # BFCL's executor keys instances by model name + entry id; a name of its own isolates this episode
        # from every other sample of the same entry.
        episode = MultiTurnEpisode(row, instance_prefix=f"agentroll_{uuid.uuid4().hex}")
        episode.tools = Toolset([_Tool(spec, episode.execute) for spec in tool_specs(row["function"])])
        return episode


# ---- the table ------------------------------------------------------------------------------------------


def table(records: Iterable[dict[str, Any]]) -> str:
    """BFCL's accuracy per category (correct / total, as its score files record it) over finished episodes
    (trajectory records of BFCL runs)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for record in records:
        verdict = record.get("metadata", {}).get("bfcl")
        category = verdict["category"] if verdict else _category_of(str(record.get("task_id", "")))
        counts[category][0] += int(bool(verdict and verdict["valid"]))
        counts[category][1] += 1  # an episode BFCL could not score (setup or score error) counts as wrong
    lines = [f"{'category':26s} {'accuracy':>9s} {'correct':>8s} {'total':>6s}"]
    for category, (correct, total) in sorted(counts.items()):
        lines.append(f"{category:26s} {correct / total:9.2%} {correct:8d} {total:6d}")
    if counts:
        correct, total = (sum(c[i] for c in counts.values()) for i in (0, 1))
        lines.append(
            f"{'overall (unweighted)':26s} {statistics.mean(c / t for c, t in counts.values()):9.2%} "
            f"{correct:8d} {total:6d}"
        )
    return "\n".join(lines)


def _category_of(task_id: str) -> str:
    return re.sub(r"_\d+(-\d+)?$", "", task_id)  # BFCL ids are CATEGORY_N (live ones CATEGORY_N-M-K)
