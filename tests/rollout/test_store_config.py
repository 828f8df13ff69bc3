"""Fast tests of the run directory and the run config: no engine needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agentroll.errors import ConfigError
from agentroll.rollout.config import load_config
from agentroll.rollout.dataset import load_tasks
from agentroll.rollout.runner import planned_ids
from agentroll.rollout.store import open_store, read_records
from agentroll.trajectory import Segment, Trajectory

EXAMPLE = Path(__file__).parents[2] / "examples" / "gsm8k_calculator.yaml"


def _traj(eid: str) -> Trajectory:
    seg = Segment()
    seg.extend([1, 2, 3], mask=0)
    seg.extend([4, 5], mask=1, logprobs=[-0.5, float("-inf")])
    return Trajectory(id=eid, task_id=eid.split(":")[0], segments=[seg], stop_reason="done", reward=1.0)


def test_torn_last_line_is_dropped_and_truncated_on_resume(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path, resume=False)
    store.append(_traj("0:0"))
    store.append(_traj("0:1"))
    store.close()
    intact = (tmp_path / "trajectories.jsonl").stat().st_size
    with (tmp_path / "trajectories.jsonl").open("ab") as f:
        f.write(b'{"id": "1:0", "segments": [{"token_ids": [1, 2')  # what a SIGKILL mid-write leaves
    _, records = open_store(tmp_path, resume=True)
    records = list(records)
    assert [r["id"] for r in records] == ["0:0", "0:1"]
    assert (tmp_path / "trajectories.jsonl").stat().st_size == intact
    assert Trajectory.from_dict(records[1]).segments[0].logprobs[-1] == float("-inf")


def test_complete_json_without_newline_counts_as_torn(tmp_path: Path) -> None:
    line = json.dumps(_traj("0:0").to_dict())
    (tmp_path / "trajectories.jsonl").write_text(line + "\n" + line.replace("0:0", "0:1"))
    assert [r["id"] for r in read_records(tmp_path / "trajectories.jsonl")] == ["0:0"]


def test_corrupt_line_in_the_middle_is_an_error_not_silently_skipped(tmp_path: Path) -> None:
    line = json.dumps(_traj("0:0").to_dict())
    (tmp_path / "trajectories.jsonl").write_text(line + "\nnot json\n" + line + "\n")
    with pytest.raises(ConfigError, match="line 2"):
        list(read_records(tmp_path / "trajectories.jsonl"))
    (tmp_path / "trajectories.jsonl").write_text(line + "\nnot json\n\n")  # a blank line after it: still corrupt
    with pytest.raises(ConfigError, match="line 2"):
        list(read_records(tmp_path / "trajectories.jsonl"))


def test_existing_run_needs_resume_or_overwrite(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path, resume=False)
    store.append(_traj("0:0"))
    store.close()
    with pytest.raises(ConfigError, match="--resume"):
        open_store(tmp_path, resume=False)
    _, records = open_store(tmp_path, resume=False, overwrite=True)
    assert list(records) == []


def test_unknown_config_key_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("dataset: {path: x.jsonl, limt: 3}\nsampels_per_task: 2\n")
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert "dataset.limt" in str(e.value) and "sampels_per_task" in str(e.value)


def test_example_config_makes_gsm8k_tasks_with_numeric_answers() -> None:
    config = load_config(EXAMPLE)
    tasks = load_tasks(config)
    assert len(tasks) == config.dataset.limit
    assert tasks[0].answer == "18"  # "... #### 18" in the first GSM8K test row
    assert tasks[0].messages[0].role == "system" and tasks[0].messages[-1].role == "user"
    assert "Janet" in tasks[0].messages[-1].content
    ids = planned_ids(tasks, config.samples_per_task)
    assert len(ids) == len(set(ids)) == len(tasks) * config.samples_per_task
    assert ids[:2] == ["0:0", "0:1"]


def test_the_demo_data_is_what_its_seeded_generator_writes_and_is_right(tmp_path: Path) -> None:
    """examples/data/arithmetic: make.py rewrites the same files; every answer is the arithmetic it states."""
    import runpy
    import shutil

    data = EXAMPLE.parent / "data" / "arithmetic"
    shutil.copy(data / "make.py", tmp_path / "make.py")
    runpy.run_path(str(tmp_path / "make.py"), run_name="__main__")
    for name in ("train.jsonl", "test.jsonl"):
        assert (tmp_path / name).read_bytes() == (data / name).read_bytes(), name
    config = load_config(EXAMPLE.parent / "arithmetic_calculator.yaml", limit=500)
    tasks = load_tasks(config)
    train = {json.loads(line)["question"] for line in (data / "train.jsonl").read_text().splitlines()}
    assert len(tasks) == 500 and not train & {t.messages[-1].content for t in tasks}  # held out
    for t in tasks:  # the numbers in the question give the answer by the kind's own arithmetic
        a, b, *c = (int(n) for n in re.findall(r"\d+", t.messages[-1].content))
        kind = t.metadata["row"]["kind"]
        want = {"multiply": a * b, "subtract": a - b, "divide": a // b, "two_step": a * b - sum(c)}[kind]
        assert t.answer == want, t.messages[-1].content


def test_limit_override_and_parquet_dataset(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pylist([{"q": f"question {i}", "a": str(i), "key": f"k{i}"} for i in range(5)]),
        tmp_path / "d.parquet",
    )
    cfg = tmp_path / "run.yaml"
    cfg.write_text("dataset: {path: d.parquet, question_field: q, answer_field: a, id_field: key}\n")
    tasks = load_tasks(load_config(cfg, limit=3))
    assert [t.id for t in tasks] == ["k0", "k1", "k2"] and tasks[2].answer == "2"


def test_two_rows_with_one_task_id_are_refused_not_collapsed(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"q": "a", "key": "same"}\n{"q": "b", "key": "same"}\n')
    cfg = tmp_path / "run.yaml"
    cfg.write_text("dataset: {path: d.jsonl, question_field: q, answer_field: null, id_field: key}\n")
    with pytest.raises(ConfigError, match="key 'same'"):
        load_tasks(load_config(cfg))


def test_hf_datasets_folder_becomes_tasks(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list([{"question": "1 + 1?", "answer": "so #### 2"}]).save_to_disk(str(tmp_path / "ds"))
    cfg = tmp_path / "run.yaml"
    cfg.write_text("dataset: {path: ds, format: hf-datasets, answer_pattern: '####\\s*(.+)$'}\n")
    (task,) = load_tasks(load_config(cfg))
    assert task.messages[-1].content == "1 + 1?" and task.answer == "2"


def test_resume_reads_the_records_one_at_a_time_not_all_at_once(tmp_path: Path) -> None:
    import tracemalloc

    store, _ = open_store(tmp_path, resume=False)
    for i in range(200):  # ~6 MB on disk; as dicts all at once, ~40 MB
        seg = Segment()
        seg.extend(list(range(1000, 6000)), mask=0)
        store.append(Trajectory(id=f"{i}:0", task_id=str(i), segments=[seg], stop_reason="done"))
    store.close()
    tracemalloc.start()
    store, records = open_store(tmp_path, resume=True)
    ids = [r["id"] for r in records]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    store.close()
    assert len(ids) == 200 and peak < 4 * 2**20, peak  # about one record's worth at a time
