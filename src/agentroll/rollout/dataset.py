"""Dataset rows -> Tasks. JSONL, Parquet (pyarrow) or Hugging Face `datasets` (a saved folder or a hub name).

A row becomes one Task: system prompt + few-shot examples + the question as a user message (or the
row's own messages), the answer extracted by `answer_pattern`, the row kept as metadata.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentroll.agent.task import Task
from agentroll.environments.bfcl import rows as bfcl_rows
from agentroll.errors import ConfigError
from agentroll.rollout.config import DatasetConfig, RunConfig
from agentroll.types import Message


def load_tasks(config: RunConfig) -> list[Task]:
    """The run's tasks, in dataset order, `offset`/`limit` applied."""
    ds = config.dataset
    rows = _rows(ds, config.resolve(ds.path)) if ds.format != "bfcl" else bfcl_rows(ds.path)
    stop = None if ds.limit is None else ds.offset + ds.limit
    picked = itertools.islice(enumerate(rows), ds.offset, stop)
    tasks = [row_to_task(row, index, config) for index, row in picked]
    _check_unique_ids(tasks, ds.id_field)
    return tasks


def _check_unique_ids(tasks: list[Task], id_field: str | None) -> None:
    """Episode IDs are `{task_id}:{sample}`: two rows with one ID would be one episode, the second dropped."""
    seen: set[str] = set()
    for t in tasks:
        if t.id in seen:
            raise ConfigError(f"dataset: two rows have {id_field or 'id'} {t.id!r}; task IDs must be unique")
        seen.add(t.id)


def row_to_task(row: dict[str, Any], index: int, config: RunConfig) -> Task:
    ds = config.dataset
    task_id = str(row[ds.id_field]) if ds.id_field else str(index)
    opening: list[Message] = []
    if config.system_prompt:
        opening.append(Message(role="system", content=config.system_prompt))
    opening.extend(config.examples)
    if ds.messages_field:
        opening.extend(Message.from_openai(m) for m in _field(row, ds.messages_field, task_id))
    else:
        question = str(_field(row, ds.question_field, task_id))
        opening.append(Message(role="user", content=ds.question_template.format(question=question)))
    answer = _answer(row.get(ds.answer_field) if ds.answer_field else None, ds.answer_pattern)
    return Task(id=task_id, messages=tuple(opening), answer=answer, metadata={"row": row})


def _field(row: dict[str, Any], name: str, task_id: str) -> Any:
    if name not in row:
        raise ConfigError(f"dataset row {task_id}: no field {name!r} (fields: {sorted(row)})")
    return row[name]


def _answer(value: Any, pattern: str | None) -> Any:
    if value is None or pattern is None:
        return value
    found = re.findall(pattern, str(value), flags=re.MULTILINE)
    return found[-1].strip() if found else None


def _rows(ds: DatasetConfig, path: Path) -> Iterator[dict[str, Any]]:
    fmt = ds.format or {".jsonl": "jsonl", ".parquet": "parquet"}.get(path.suffix, "hf")
    if fmt == "jsonl":
        return _jsonl(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return iter(pq.read_table(path).to_pylist())
    return _hf(ds, path)


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    try:
        f = path.open(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"dataset {path}: {e}") from e
    with f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"dataset {path}: line {number}: {e}") from e


def _hf(ds: DatasetConfig, path: Path) -> Iterator[dict[str, Any]]:
    import datasets

    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "state.json").exists()):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            loaded = loaded[ds.split]
    else:  # a hub name or a folder of data files; the cache must already hold it (no network at run time)
        loaded = datasets.load_dataset(ds.path if not path.exists() else str(path), split=ds.split)
    return iter(loaded)
