"""`--ray` end to end on a real local Ray cluster (ray.init, 2 worker actors) against a real vLLM CPU
server shared by the workers: a worker SIGKILLed mid-run, or SIGSTOPped (hung), has its episodes re-run
elsewhere, and the run directory ends with every planned episode exactly once;
`agentroll run RUN_DIR --resume --ray ADDRESS` finishes a cut-short run the same way on a `ray start --head`
cluster. Servers and the Ray head are started here and stopped by PID / process group."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentroll.rollout.config import load_config
from agentroll.rollout.dataset import load_tasks
from agentroll.rollout.runner import planned_ids, run
from agentroll.rollout.store import read_records

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed: pip install ray==2.60.0"),
]
EXAMPLE = Path(__file__).parents[2] / "examples" / "gsm8k_calculator.yaml"
PLANNED = 10


def small_config(engine: str) -> Any:
    """The GSM8K calculator example, cut down: 10 questions, 2 turns, every turn forced to call the calculator."""
    episode = {
        "max_turns": 2,
        "tool_choice": "calculator",
        "sampling": {"max_tokens": 48, "temperature": 0.7, "seed": 0},
    }
    return load_config(EXAMPLE, limit=PLANNED, samples_per_task=1, engine=engine, concurrency=4, episode=episode)


def run_and_strike(loop: Any, engine: str, out: Path, sig: int, **executor: Any) -> tuple[dict, Any, str]:
    """Run on 2 Ray workers; once 2 episodes are on disk, send `sig` to a worker that has written one and has
    more in flight."""
    from agentroll.rollout.ray_executor import RayExecutor

    config = small_config(engine)
    ray_executor = RayExecutor(config, workers=2, **executor)
    running = asyncio.run_coroutine_threadsafe(run(config, out, executor=ray_executor, progress=False), loop.loop)
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and not running.done() and time.monotonic() < deadline:
        wrote = writers(out)
        busy = [w for w in ray_executor.workers if w.alive and w.in_flight > 0 and w.pid is not None]
        busy = [w for w in busy if w.name in wrote]  # struck after it has written one: both workers ran episodes
        if sum(wrote.values()) >= 2 and busy:
            victim = busy[0]
            victim_name = victim.name
            os.kill(victim.pid, sig)
        time.sleep(0.02)
    summary = running.result(timeout=300)
    assert victim is not None, "the run ended before a worker could be struck mid-run"
    return summary, victim, victim_name


def writers(run_dir: Path) -> dict[str, int]:
    """Episodes on disk so far, per Ray worker (a line still being written is skipped)."""
    path = run_dir / "trajectories.jsonl"
    counts: dict[str, int] = {}
    for line in path.read_bytes().splitlines(keepends=True) if path.exists() else []:
        if line.endswith(b"\n"):
            name = json.loads(line).get("metadata", {}).get("ray_worker")
            counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.fixture(scope="module")
def killed_run(loop: Any, vllm_spec: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """A worker SIGKILLed mid-run."""
    out = tmp_path_factory.mktemp("ray") / "run"
    summary, _, victim_name = run_and_strike(loop, vllm_spec, out, signal.SIGKILL)
    return out, summary, victim_name


@pytest.fixture(scope="module")
def stopped_run(loop: Any, vllm_spec: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """A worker SIGSTOPped mid-run: alive to Ray, but it answers nothing (a hang, not a death)."""
    out = tmp_path_factory.mktemp("ray-hung") / "run"
    summary, victim, victim_name = run_and_strike(loop, vllm_spec, out, signal.SIGSTOP, hang_timeout_s=6.0)
    try:
        yield out, summary, victim_name, _running(victim.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.pid, signal.SIGKILL)  # only if the executor failed to


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def ids_on_disk(run_dir: Path) -> list[str]:
    return [r["id"] for r in read_records(run_dir / "trajectories.jsonl")]


def test_a_killed_workers_episodes_are_rerun_elsewhere_none_lost_none_twice(killed_run: tuple) -> None:
    out, summary, victim = killed_run
    ids = ids_on_disk(out)
    planned = planned_ids(load_tasks(small_config("vllm://127.0.0.1:9")), 1)
    assert len(planned) == PLANNED
    assert len(ids) == len(set(ids)) == PLANNED and set(ids) == set(planned)  # 0 lost, 0 duplicated
    assert summary["episodes"] == summary["planned"] == PLANNED
    assert summary["executor"] == "ray" and summary["ray_workers"] == 2 and summary["worker_restarts"] == 1
    assert summary["rerun_episodes"] >= 1 and summary["duplicates_dropped"] == 0
    assert json.loads((out / "summary.json").read_text())["rerun_ids"] == summary["rerun_ids"]
    by_id = {r["id"]: r for r in read_records(out / "trajectories.jsonl")}
    for eid in summary["rerun_ids"]:  # each re-run episode was written by a live worker, not the killed one
        assert by_id[eid]["metadata"]["ray_worker"] != victim
    workers = {r["metadata"]["ray_worker"] for r in by_id.values()}
    assert victim in workers and len(workers) >= 2  # the victim had written one before it was struck


def test_a_hung_worker_is_killed_and_its_episodes_rerun_elsewhere_none_lost_none_twice(stopped_run: tuple) -> None:
    out, summary, victim, victim_running = stopped_run
    ids = ids_on_disk(out)
    assert len(ids) == len(set(ids)) == PLANNED  # 0 lost, 0 duplicated
    assert summary["hung_workers"] == 1 and summary["worker_restarts"] == 1
    assert summary["rerun_episodes"] >= 1 and summary["duplicates_dropped"] == 0
    assert not victim_running  # the stopped process was killed, not left behind
    by_id = {r["id"]: r for r in read_records(out / "trajectories.jsonl")}
    assert all(by_id[eid]["metadata"]["ray_worker"] != victim for eid in summary["rerun_ids"])


def test_ray_workers_ran_real_episodes_with_tool_calls_and_no_drift(killed_run: tuple) -> None:
    out, summary, _ = killed_run
    # The named tool_choice opens the call; the 135M model's arguments may still run past max_tokens.
    assert summary["tool_calls"] >= 1 and summary["drift_count"] == 0
    assert summary["sampled_tokens"] > 0 and summary["errors"] == 0, summary["stop_reasons"]
    for record in read_records(out / "trajectories.jsonl"):
        seg = record["segments"][0]
        assert len(seg["token_ids"]) == len(seg["loss_mask"]) == len(seg["logprobs"])
        assert sum(seg["loss_mask"]) == sum(len(t["sampled_ids"]) for t in record["turns"])


@pytest.fixture()
def ray_head() -> Iterator[str]:
    """A real Ray head node (`ray start --head --block`), in its own process group, stopped by that group's ID."""
    from agentroll.engines.launch import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--port", str(port)]
    cmd += ["--num-cpus", "2", "--object-store-memory", str(150 * 2**20), "--include-dashboard", "false"]
    cmd += ["--ray-client-server-port", str(free_port()), "--disable-usage-stats"]
    head = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _listening(port):
            assert head.poll() is None and time.monotonic() < deadline, "ray start --head did not come up"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(3)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # gcs_server and raylet outlive a SIGTERM for a while
        head.wait(30)


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def test_cli_resume_on_a_ray_cluster_by_address_finishes_a_cut_short_run_exactly_once(
    killed_run: tuple, ray_head: str, tmp_path: Path
) -> None:
    out, _, _ = killed_run
    run_dir = tmp_path / "cut"
    shutil.copytree(out, run_dir)
    lines = (run_dir / "trajectories.jsonl").read_bytes().splitlines(keepends=True)
    kept = lines[:5]
    (run_dir / "trajectories.jsonl").write_bytes(b"".join(kept) + lines[5][:40])  # + a torn write
    cmd = [sys.executable, "-m", "agentroll", "run", str(run_dir), "--resume", "--ray", ray_head, "--no-progress"]
    env = {**os.environ, "RAY_AUTH_MODE": "token"}  # `ray start` enables token auth; an explicit address must opt in
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    assert proc.returncode == 0, stderr[-3000:]
    ids = ids_on_disk(run_dir)
    assert ids[:5] == [json.loads(line)["id"] for line in kept]  # what was on disk stays as it was
    assert len(ids) == len(set(ids)) == PLANNED and set(ids) == set(ids_on_disk(out))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["new_episodes"] == PLANNED - 5 and summary["executor"] == "ray"
    assert "ray           2 workers" in stdout
