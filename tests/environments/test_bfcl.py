"""BFCL v4 environments, checked against BFCL itself (the bfcl-eval wheel: its entries, possible answers,
classes, executor and checkers).

- Single-turn: for every category, BFCL's own possible answer, handed over the way agentroll hands a parsed
  turn over, is valid under BFCL's AST checker, and a changed argument or a missing call is not.
- Multi-turn: BFCL's ground-truth calls, written as the model would write them (smollm2's template), played
  through the episode loop (parser, per-episode BFCL instances, user turns) on a replay engine, are valid
  under BFCL's multi-turn checker; the same episode without its last turn's calls is not.
- Isolation: two episodes of one entry each change only their own file system; teardown leaves no instance.
- End to end on the embedded engine: the example configs run and every episode carries BFCL's verdict.
"""

from __future__ import annotations

import ast
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentroll.engines.replay import ReplayEngine
from agentroll.environments import bfcl
from agentroll.renderers import get_renderer
from agentroll.rollout.config import config_from_dict, load_config
from agentroll.rollout.dataset import load_tasks
from agentroll.rollout.runner import run
from agentroll.rollout.store import read_records
from agentroll.trajectory import Trajectory

pytest.importorskip("bfcl_eval", reason="bfcl-eval not installed: bash scripts/install_bfcl.sh")

RENDERER = get_renderer("smollm2")
END = RENDERER.stop_token_ids()[0]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _first_answer(truth: list[dict]) -> list[dict]:
    """BFCL's possible answer as a model's calls: each parameter's first accepted value ("" = leave it out)."""
    calls = []
    for call in truth:
        ((name, params),) = call.items()
        args = {k: v[0] for k, v in params.items() if v and v[0] != ""}
        calls.append({name.replace(".", "_"): args})  # the tool names agentroll sends (BFCL's OpenAI handlers')
    return calls


@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple",
                                      "live_multiple", "live_parallel", "live_parallel_multiple"])  # fmt: skip
def test_bfcl_possible_answers_pass_its_ast_checker_and_changed_ones_fail(category):
    rows = list(bfcl.rows(category))[:25]
    checked = 0
    for row in rows:
        answer = _first_answer(row["ground_truth"])
        verdict = bfcl.check_single_turn(row, answer)
        if not verdict["valid"]:  # a few answers' first option is not the checker's accepted form; skip those
            continue
        checked += 1
        assert bfcl.check_single_turn(row, answer[:-1])["valid"] is False  # a call missing
        ((name, args),) = answer[0].items()
        if args:
            key = next(iter(args))
            wrong = [{name: {**args, key: ["not", "this"]}}, *answer[1:]]
            assert bfcl.check_single_turn(row, wrong)["valid"] is False, (row["id"], wrong)
    assert checked >= 0.8 * len(rows), f"{category}: only {checked} of {len(rows)} possible answers were valid"


def test_irrelevance_is_valid_only_without_a_call():
    row = next(bfcl.rows("irrelevance"))
    (fn,) = row["function"]
    assert bfcl.check_single_turn(row, []) == {"valid": True, "error_type": None}
    assert bfcl.check_single_turn(row, [{fn["name"]: {}}])["valid"] is False


def test_tools_are_json_schema_with_bfcl_openai_names():
    row = next(r for r in bfcl.rows("simple_python") if r["id"] == "simple_python_1")
    (spec,) = bfcl.tool_specs(row["function"])
    assert spec.name == "math_factorial" and spec.input_schema["type"] == "object"
    assert spec.input_schema["properties"]["number"]["type"] == "integer"


# ---- multi-turn ground truth through the episode loop ----------------------------------------------------


def _as_call(text: str, functions: list[dict]) -> dict:
    """A BFCL ground-truth call string ("cd(folder='x')", "sort('f')") as a tool call the model would write."""
    node = ast.parse(text, mode="eval").body
    name = node.func.id
    doc = next(f for f in functions if f["name"] == name)
    order = list(doc["parameters"]["properties"])
    args = {order[i]: ast.literal_eval(a) for i, a in enumerate(node.args)}
    args.update({k.arg: ast.literal_eval(k.value) for k in node.keywords})
    return {"name": name, "arguments": args}


def _script(row: dict, turns: list[list[str]]) -> list[list[int]]:
    """Per user turn: one completion with the turn's calls, then one that answers in text (ending the turn)."""
    script = []
    for calls in turns:
        if calls:
            text = "\n".join(f"<tool_call>\n{json.dumps(_as_call(c, row['function']))}\n</tool_call>" for c in calls)
            script.append([*RENDERER.tokenizer.encode(text), END])
        script.append([*RENDERER.tokenizer.encode("Done."), END])
    return script


def _multi_turn_config(category: str, offset: int, out: Path) -> object:
    return config_from_dict({
        "dataset": {"format": "bfcl", "path": category, "messages_field": "messages", "id_field": "id",
                    "answer_field": None, "offset": offset, "limit": 1},
        "environment": "bfcl_multi_turn",
        "renderer": "smollm2",
        "episode": {"max_turns": 40, "max_episode_tokens": 200_000, "sampling": {"max_tokens": 512}},
        "rewards": {"env:bfcl_valid": 1.0},
        "output_dir": str(out),
    })  # fmt: skip


def _replay(loop, category: str, offset: int, out: Path, drop_last: bool = False) -> Trajectory:
    config = _multi_turn_config(category, offset, out)
    (task,) = load_tasks(config)
    row = task.metadata["row"]
    turns = [list(t) for t in row["ground_truth"]]
    if drop_last:
        turns[-1] = []
    engine = ReplayEngine(_script(row, turns))
    summary = loop.run(run(config, out, engine=engine, progress=False))
    (traj,) = [Trajectory.from_dict(r) for r in read_records(Path(summary["trajectories"]))]
    return traj, row


@pytest.mark.parametrize(("category", "offset"), [("multi_turn_base", i) for i in range(6)]
                         + [("multi_turn_miss_param", 0), ("multi_turn_long_context", 0)])  # fmt: skip
def test_ground_truth_played_through_the_episode_loop_is_valid_under_bfcl_multi_turn_checker(
    loop, tmp_path, category, offset
):
    traj, row = _replay(loop, category, offset, tmp_path / "run")
    assert traj.stop_reason == "done", traj.metadata
    verdict = traj.metadata["bfcl"]
    assert verdict == {"category": category, "valid": True, "error_type": None}, verdict
    assert traj.reward == 1.0
    executed = [r for r in traj.tool_results if "bfcl_call" in r.metadata]
    assert executed and not any(r.is_error for r in executed)
    # every user turn of the entry was fed, in order, after the model finished the one before
    users = [m.content for m in traj.messages if m.role == "user"]
    assert users == [t[0]["content"] for t in row["turns"]]
    assert not [n for n in vars(bfcl.bfcl().multi_turn_utils) if n.startswith("agentroll_")]  # torn down


def test_an_episode_missing_its_last_turn_calls_fails_the_checker(loop, tmp_path):
    traj, _ = _replay(loop, "multi_turn_base", 0, tmp_path / "run", drop_last=True)
    assert traj.metadata["bfcl"]["valid"] is False and traj.reward == 0.0
    assert traj.metadata["bfcl"]["error_type"].startswith("multi_turn:")


def test_two_episodes_of_one_entry_never_share_state_and_teardown_leaves_nothing():
    config = _multi_turn_config("multi_turn_base", 0, Path("unused"))
    (task,) = load_tasks(config)
    env = bfcl.BFCLMultiTurn()

    async def go():
        a, b = await env.setup(task, "0:0"), await env.setup(task, "0:1")
        assert a.instance_prefix != b.instance_prefix
        made = a.execute("mkdir", {"dir_name": "only_in_a"})
        seen_by_b = b.execute("ls", {})
        seen_by_a = a.execute("ls", {})
        await a.teardown()
        await b.teardown()
        return made, seen_by_a, seen_by_b

    made, seen_by_a, seen_by_b = asyncio.run(go())
    assert not made.is_error and "only_in_a" in seen_by_a.content and "only_in_a" not in seen_by_b.content
    assert not [n for n in vars(bfcl.bfcl().multi_turn_utils) if n.startswith("agentroll_")]


def test_a_row_that_is_not_bfcl_is_a_clear_error():
    from agentroll.agent.task import Task
    from agentroll.errors import ConfigError
    from agentroll.types import Message

    task = Task(id="x", messages=(Message(role="user", content="hi"),))
    with pytest.raises(ConfigError, match="format: bfcl"):
        asyncio.run(bfcl.BFCLMultiTurn().setup(task, "x:0"))
    with pytest.raises(ConfigError, match="not played here"):
        next(bfcl.rows("multi_turn_miss_func"))


# ---- the example configs on the embedded engine ----------------------------------------------------------


def _check_run(run_dir: Path, episodes: int, held_to_a_call: bool) -> list[Trajectory]:
    trajs = [Trajectory.from_dict(r) for r in read_records(run_dir / "trajectories.jsonl")]
    assert len(trajs) == episodes
    for t in trajs:
        assert "bfcl" in t.metadata, (t.stop_reason, t.metadata.get("error"))
        assert t.reward == float(t.metadata["bfcl"]["valid"])
        if held_to_a_call:
            assert t.turns[0].tool_calls and t.turns[0].constrained == "tool_call"  # guided first call
    out = subprocess.run([sys.executable, "-m", "agentroll", "envs", "bfcl", str(run_dir)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["category", "accuracy", "correct", "total"] and lines[-1].startswith("overall")
    return trajs


@pytest.mark.slow
def test_the_single_turn_example_evaluates_the_embedded_model_category_by_category(loop, embedded, tmp_path):
    config = load_config(EXAMPLES / "bfcl_single_turn.yaml")
    config = config.model_copy(update={"dataset": config.dataset.model_copy(
        update={"path": "simple_python:3,parallel:3,irrelevance:3"})})  # fmt: skip
    loop.run(run(config, tmp_path / "run", engine=embedded, progress=False), timeout=900)
    trajs = _check_run(tmp_path / "run", 9, held_to_a_call=False)
    assert {t.metadata["bfcl"]["category"] for t in trajs} == {"simple_python", "parallel", "irrelevance"}
    assert all(len(t.turns) == 1 for t in trajs)  # one answer per entry


@pytest.mark.slow
def test_the_multi_turn_example_runs_from_the_command_line(tmp_path):
    # Its prompts (BFCL's function docs) need an 8k context: the example's own engine, in its own process.
    cmd = [sys.executable, "-m", "agentroll", "run", str(EXAMPLES / "bfcl_multi_turn.yaml"), "--limit", "2",
           "--out", str(tmp_path / "run"), "--no-progress"]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=900, capture_output=True)
    trajs = _check_run(tmp_path / "run", 4, held_to_a_call=True)
    assert all(t.metadata["environment"]["name"] == "bfcl_multi_turn" for t in trajs)
