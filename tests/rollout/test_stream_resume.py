"""A stream SIGKILLed while its trainer trains, with groups in flight, then resumed in a new process: every
group reaches a trainer exactly once, a partial group is completed and handed out whole, no episode is played
twice. Both trainer processes drive `Rollouts` on one real vLLM server (tests/rollout/conftest.py); the test
process only starts, kills and reads. Run as a module, this file is that trainer (see `train`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentroll.rollout.config import config_from_dict
from agentroll.rollout.store import read_records
from agentroll.rollout.stream import DELIVERED, Ledger, Rollouts, uniform_rewards
from agentroll.trajectory import Trajectory

ROOT = Path(__file__).parents[2]
GSM8K = ROOT / "examples" / "data" / "gsm8k" / "test.jsonl"
TASKS, SAMPLES = 6, 3  # groups of 3 on 2 workers: a group's last episode runs beside the next group's first
TRAINED_BEFORE_KILL = 2  # batches of one group; the kill comes while the trainer trains on the second


def config(engine: str) -> Any:
    return config_from_dict(
        {
            "dataset": {"path": str(GSM8K), "answer_pattern": "####\\s*(.+)$", "limit": TASKS},
            "system_prompt": "Answer briefly.",
            "samples_per_task": SAMPLES,
            "engine": engine,
            "episode": {"max_turns": 1, "sampling": {"max_tokens": 48, "temperature": 0.7}},
            "concurrency": 2,
        }
    )


async def train(engine: str, run_dir: Path, log: Path, resume: bool) -> None:
    """A trainer: one group per batch, each batch logged (fsynced) as it arrives; the first process then
    trains on its second batch until it is killed, while `buffer_groups` groups run on."""
    async with Rollouts(config(engine), run_dir, resume=resume, buffer_groups=2) as rollouts:
        received = 0
        while batch := await rollouts.next_batch(groups=1):
            with log.open("a") as f:
                f.write(json.dumps([{t.id: t.segments[0].token_ids for t in group} for group in batch]) + "\n")
                f.flush()
                os.fsync(f.fileno())
            received += 1
            if not resume and received == TRAINED_BEFORE_KILL:
                await asyncio.sleep(3600)  # a long train step: the kill comes here


def start_trainer(engine: str, run_dir: Path, log: Path, *, resume: bool) -> subprocess.Popen:
    argv = [sys.executable, "-m", "tests.rollout.test_stream_resume", engine, str(run_dir), str(log)]
    return subprocess.Popen(
        [*argv, *(["--resume"] if resume else [])],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(run_dir.parent / "trainer.err").open("ab"),
        start_new_session=True,  # its own process group, killed as one
    )


def batches(log: Path) -> list[list[dict[str, list[int]]]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def groups_on_disk(run_dir: Path) -> dict[str, dict[str, list[int]]]:
    """task ID -> {episode ID: token IDs} of every complete line in trajectories.jsonl."""
    path, groups = run_dir / "trajectories.jsonl", {}
    for record in read_records(path) if path.exists() else []:
        groups.setdefault(record["task_id"], {})[record["id"]] = record["segments"][0]["token_ids"]
    return groups


def task_of(group: dict[str, list[int]]) -> str:
    return next(iter(group)).split(":")[0]


def kill_point(run_dir: Path, log: Path) -> tuple[set[str], set[str]] | None:
    """Once the trainer trains on its last batch: the groups complete on disk that it was never handed, and the
    partial groups; None until there is at least one of each."""
    received = {task_of(g) for b in batches(log) for g in b}
    if len(batches(log)) < TRAINED_BEFORE_KILL:
        return None
    on_disk = groups_on_disk(run_dir)
    complete = {t for t, eps in on_disk.items() if len(eps) == SAMPLES} - received
    partial = {t for t, eps in on_disk.items() if len(eps) < SAMPLES}
    return (complete, partial) if complete and partial else None


@pytest.mark.slow
def test_a_stream_killed_mid_training_hands_every_group_out_exactly_once_after_resume(
    vllm_spec: str, tmp_path: Path
) -> None:
    run_dir, first_log, second_log = tmp_path / "run", tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    run_dir.mkdir()
    proc, point = start_trainer(vllm_spec, run_dir, first_log, resume=False), None
    try:
        deadline = time.monotonic() + 300
        while point is None and proc.poll() is None and time.monotonic() < deadline:
            point = kill_point(run_dir, first_log)
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    errors = (tmp_path / "trainer.err").read_text()[-3000:]
    assert point is not None, f"the run never reached a kill point (exit {proc.returncode}): {errors}"
    complete_unhanded, partial = point
    at_kill, first = groups_on_disk(run_dir), batches(first_log)
    trained, interrupted = first[:-1], first[-1]  # the trainer never finished its step on the last batch

    resumed = start_trainer(vllm_spec, run_dir, second_log, resume=True)
    assert resumed.wait(300) == 0, (tmp_path / "trainer.err").read_text()[-3000:]
    second = batches(second_log)

    # every group reaches a trainer that finishes its step exactly once: none lost, none twice
    finished = [task_of(g) for b in [*trained, *second] for g in b]
    assert sorted(finished) == [str(t) for t in range(TASKS)]
    handed_again = {task_of(g): g for b in second for g in b}
    # the batch a killed trainer was training on comes again: the same episodes, not played again
    for group in interrupted:
        assert handed_again[task_of(group)] == group
    for task in complete_unhanded:  # complete on disk, never handed out before the kill
        assert handed_again[task] == at_kill[task]
    for task in partial:  # completed whole, its episodes on disk kept as they were
        assert sorted(handed_again[task]) == [f"{task}:{s}" for s in range(SAMPLES)]
        assert {k: handed_again[task][k] for k in at_kill[task]} == at_kill[task]
    ids = [r["id"] for r in read_records(run_dir / "trajectories.jsonl")]
    assert len(ids) == len(set(ids)) == TASKS * SAMPLES  # no episode played twice
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["new_episodes"] == TASKS * SAMPLES - sum(len(eps) for eps in at_kill.values())
    ledger = [g["task_id"] for r in read_records(run_dir / DELIVERED) for g in r["groups"]]
    assert ledger == finished  # the durable record says what the trainers finished, in order


def traj(reward: float | None, sample: int = 0) -> Trajectory:
    return Trajectory(id=f"0:{sample}", task_id="0", sample_index=sample, reward=reward)


def test_only_groups_whose_rewards_are_all_equal_numbers_count_as_uniform() -> None:
    assert uniform_rewards([traj(1.0, 0), traj(1.0, 1)])
    assert uniform_rewards([traj(0.1 + 0.2, 0), traj(0.3, 1)])  # float noise is no signal
    assert not uniform_rewards([traj(1.0, 0), traj(0.0, 1)])
    # a scorer that failed gives None: not a value equal to the others, whatever they are
    assert not uniform_rewards([traj(None, 0), traj(None, 1)])
    assert not uniform_rewards([traj(None, 0), traj(0.0, 1), traj(0.0, 2)])


def test_a_group_whose_scorer_failed_is_handed_out_not_dropped_as_uniform(tmp_path: Path) -> None:
    """Real runner, scorer path and environment (tests/agent/counter_env.py); the engine replays one answer, so
    every episode counts 0 and only the failed score tells the groups apart."""
    from agentroll.engines.replay import ReplayEngine
    from agentroll.renderers import get_renderer

    renderer = get_renderer("smollm2")
    answer = [*renderer.tokenizer.encode("Done."), renderer.stop_token_ids()[0]]
    data = tmp_path / "tasks.jsonl"
    data.write_text('{"question": "Say done."}\n' * 2)
    cfg = config_from_dict(
        {
            "dataset": {"path": str(data)},
            "samples_per_task": 2,
            "environment": "tests.agent.counter_env:Counter",
            "environment_options": {"fail_score_for": ["0:1"]},
            "rewards": {"env:count": 1.0},
        }
    )

    async def take() -> tuple[list[Any], dict[str, int]]:
        async with Rollouts(cfg, tmp_path / "run", engine=ReplayEngine([answer]), drop_uniform_groups=True) as r:
            batch = await r.next_batch(groups=2)
            assert r.stats["unacknowledged_groups"] == 1 and r.stats["delivered_groups"] == 0
        return batch, r.stats  # left normally: the batch is acknowledged

    batch, stats = asyncio.run(take())
    (group,) = batch  # task 1 scored [0, 0]: dropped; task 0 scored [0, None]: not uniform, handed out
    assert [t.reward for t in group] == [0.0, None] and "env:count" in group[1].metadata["reward_error"]
    assert stats["dropped_uniform_groups"] == 1 and stats["unscored_groups"] == 1 and stats["delivered_groups"] == 1


def test_a_kill_mid_acknowledgement_loses_the_whole_batch_never_half(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / DELIVERED)
    ledger.delivered([[traj(1.0, 0), traj(0.0, 1)]])
    with ledger.path.open("ab") as f:
        f.write(b'{"event": "delivered", "batch": 1, "groups": [{"task_id": "1", "episode')  # torn by a kill
    again = Ledger(tmp_path / DELIVERED)
    again.load(samples_per_task=2)
    assert again.closed == {"0"} and again.counts["delivered_batches"] == 1
    again.delivered([[traj(None, 0), traj(None, 1)]])  # appended after the cut, not glued to the torn line
    assert [r["batch"] for r in read_records(again.path)] == [0, 1] and again.counts["unscored_groups"] == 1


if __name__ == "__main__":
    asyncio.run(train(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), resume="--resume" in sys.argv))
