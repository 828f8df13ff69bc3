"""The driver side of `--ray`, without a cluster: the single writer drops a second result for an episode,
a dead worker's episodes are requeued first and counted, concurrency is split across workers, and
nothing here imports Ray until a RayExecutor starts."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

from agentroll.agent import Task
from agentroll.cli.main import build_parser
from agentroll.errors import ExecutorError
from agentroll.rollout.config import config_from_dict
from agentroll.rollout.progress import Progress
from agentroll.rollout.ray_executor import Ledger, RayExecutor
from agentroll.rollout.runner import Recorder
from agentroll.rollout.store import open_store, read_records
from agentroll.rollout.summary import Tally
from agentroll.trajectory import Trajectory
from agentroll.types import Message

GSM8K = Path(__file__).parents[2] / "examples" / "data" / "gsm8k" / "test.jsonl"


def make_config(**extra: object):
    return config_from_dict({"dataset": {"path": str(GSM8K)}, "engine": "vllm://127.0.0.1:9", **extra})


def answered(task: Task, sample: int, answer: str) -> Trajectory:
    """A finished episode as a worker returns it: the question, then the model's final answer."""
    return Trajectory(
        id=f"{task.id}:{sample}",
        task_id=task.id,
        sample_index=sample,
        messages=[*task.messages, Message(role="assistant", content=f"So the total is\n#### {answer}")],
        stop_reason="done",
    )


def test_a_second_result_for_a_written_episode_is_dropped_and_counted(tmp_path: Path) -> None:
    task = Task(id="7", messages=(Message(role="user", content="What is 3 + 4?"),), answer="7")
    store, on_disk = open_store(tmp_path, resume=False)
    tally = Tally()
    record = Recorder(make_config(), store, tally, Progress(2, 0, enabled=False), {r["id"] for r in on_disk})
    try:
        assert record(task, answered(task, 0, "7")) is True
        assert record(task, answered(task, 0, "8")) is False  # e.g. a worker presumed dead answered after all
        assert record(task, answered(task, 1, "8")) is True
    finally:
        store.close()
    lines = list(read_records(tmp_path / "trajectories.jsonl"))
    assert [r["id"] for r in lines] == ["7:0", "7:1"]
    assert [r["reward"] for r in lines] == [1.0, 0.0]  # the first result is the one kept, scored by the driver
    assert record.duplicates == 1 and tally.stops["done"] == 2 and tally.rewards == [1.0, 0.0]


def test_an_episode_already_on_disk_is_not_written_again_after_resume(tmp_path: Path) -> None:
    task = Task(id="3", messages=(Message(role="user", content="2 + 2?"),), answer="4")
    store, _ = open_store(tmp_path, resume=False)
    store.append(answered(task, 0, "4"))
    store.close()
    store, on_disk = open_store(tmp_path, resume=True)
    record = Recorder(make_config(), store, Tally(), Progress(1, 1, enabled=False), {r["id"] for r in on_disk})
    try:
        assert record(task, answered(task, 0, "5")) is False
    finally:
        store.close()
    assert [r["reward"] for r in read_records(tmp_path / "trajectories.jsonl")] == [None]  # untouched line
    assert record.duplicates == 1


def test_a_dead_workers_episodes_are_requeued_first_and_counted() -> None:
    ledger = Ledger(deque(["0:0", "1:0", "2:0", "3:0", "4:0"]))
    assert [ledger.take("ray-0.0"), ledger.take("ray-0.0")] == ["0:0", "1:0"]
    assert ledger.take("ray-1.0") == "2:0"
    ledger.settle("0:0")
    ledger.requeue("1:0")  # ray-0 died with 1:0 in flight
    assert ledger.in_flight == {"2:0": "ray-1.0"} and ledger.reruns == ["1:0"]
    assert ledger.take("ray-1.0") == "1:0"  # before 3:0 and 4:0, which no worker has started
    assert ledger.in_flight["1:0"] == "ray-1.0"
    for eid in ("1:0", "2:0"):
        ledger.settle(eid)
    assert not ledger.complete
    while (eid := ledger.take("ray-0.1")) is not None:
        ledger.settle(eid)
    assert ledger.complete and ledger.reruns == ["1:0"]


def test_a_failure_reported_after_an_episode_settled_does_not_rerun_it() -> None:
    ledger = Ledger(deque(["0:0"]))
    ledger.take("ray-0.0")
    ledger.settle("0:0")
    ledger.requeue("0:0")
    assert ledger.complete and ledger.reruns == []


def test_an_episode_that_takes_down_every_worker_it_runs_on_is_given_up_after_max_attempts() -> None:
    ledger = Ledger(deque(["0:0", "1:0"]), max_attempts=2)
    assert ledger.take("ray-0.0") == "0:0"
    assert ledger.requeue("0:0")  # the first death: run it again
    assert ledger.take("ray-0.1") == "0:0"
    assert not ledger.requeue("0:0")  # the second: given up, not queued again
    assert ledger.lost == ["0:0"] and ledger.reruns == ["0:0"] and "0:0" not in ledger.queue
    assert ledger.take("ray-0.2") == "1:0"  # the rest of the run goes on
    ledger.settle("1:0")
    assert ledger.complete


def test_only_the_episode_that_keeps_killing_workers_is_given_up_not_its_neighbours() -> None:
    ledger = Ledger(deque(["bad", "a", "b", "c"]), max_attempts=3)
    on_first = [ledger.take("ray-0.0", busy) for busy in range(3)]  # three episodes share a worker
    assert on_first == ["bad", "a", "b"] and ledger.take("ray-1.0") == "c"
    for eid in on_first:  # ray-0.0 dies: each of its three might have done it
        assert ledger.requeue(eid)
    assert ledger.take("ray-1.0", busy=1) is None  # a busy worker takes no suspect: it drains first
    ledger.settle("c")
    assert ledger.take("ray-1.0") == "bad" and ledger.take("ray-1.0", busy=1) is None  # a suspect runs alone
    assert ledger.take("ray-0.1") == "a"
    assert ledger.requeue("bad")  # ray-1.0 dies with only "bad" on it
    ledger.settle("a")  # the neighbours, each alone, come back fine
    assert ledger.take("ray-0.1") == "b"
    ledger.settle("b")
    assert ledger.take("ray-0.1") == "bad"
    assert not ledger.requeue("bad")  # its third death: given up
    assert ledger.lost == ["bad"] and ledger.complete


def test_concurrency_is_split_across_workers_and_each_worker_gets_at_least_one() -> None:
    assert [w.capacity for w in RayExecutor(make_config(concurrency=5), workers=2).workers] == [3, 2]
    assert [w.capacity for w in RayExecutor(make_config(concurrency=2), workers=3).workers] == [1, 1, 1]
    assert RayExecutor(make_config(), workers=2).summary()["rerun_episodes"] == 0


def test_an_embedded_engine_on_ray_warns_that_each_worker_loads_the_model() -> None:
    with pytest.warns(UserWarning, match="loads its own copy of the model"):
        RayExecutor(make_config(engine="embedded"), workers=2)


def test_ray_flag_without_address_starts_a_local_ray_and_with_one_connects() -> None:
    def parsed(*flags: str):
        argv = ["run", "cfg.yaml", *flags]
        parser, _ = build_parser(argv)
        return parser.parse_args(argv)

    assert parsed().ray is None
    assert parsed("--ray").ray == "local"
    assert parsed("--ray", "10.0.0.5:6379", "--ray-workers", "4").ray == "10.0.0.5:6379"
    assert parsed("--ray", "--ray-workers", "3").ray_workers == 3


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed: pip install ray==2.60.0")
def test_an_address_where_no_ray_cluster_listens_fails_fast_with_executor_error() -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{bound.getsockname()[1]}"
        executor = RayExecutor(make_config(), address=address)
        with pytest.raises(ExecutorError, match=f"no Ray cluster at {address}"):
            asyncio.run(executor.start(has_work=True))
    asyncio.run(executor.aclose())  # nothing was started: closing is a no-op


def test_the_core_package_and_the_run_command_do_not_import_ray() -> None:
    code = (
        "import sys, json\n"
        "import agentroll.cli.run, agentroll.rollout.runner, agentroll.rollout.ray_executor as rx\n"
        "from agentroll.rollout.config import config_from_dict\n"
        f"rx.RayExecutor(config_from_dict({{'dataset': {{'path': {str(GSM8K)!r}}}, 'engine': 'vllm://h:1'}}))\n"
        "print(json.dumps('ray' in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout) is False
