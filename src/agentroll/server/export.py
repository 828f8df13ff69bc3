"""Sessions -> the runner's formats: `trajectories.jsonl` (one `Trajectory.to_dict()` per line, what
`agentroll export RUN_DIR` reads) and, through `agentroll.export`, parquet / verl / trl files.

HTTP bodies are strict JSON, which has no infinities; a logprob may be -inf (a token the sampler
could not pick), so `jsonable` spells those as strings ("-inf") in responses. Files keep floats.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from agentroll.export import FORMATS, export
from agentroll.rollout.store import TRAJECTORIES
from agentroll.trajectory import Trajectory

FILE_FORMATS = tuple(f for f in FORMATS if f != "hf")  # hf is a folder: use --save-dir + `agentroll export`


def jsonable(obj: Any) -> Any:
    """A copy of `obj` with non-finite floats spelled as strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def finished(sessions: Iterable[Any], renderer: Any) -> list[Trajectory]:
    """Every session that sampled at least once, prefix-checked now: copies taken on the event loop, so
    an export serialised in a worker thread never reads a session that a new call is extending."""
    return [copy.deepcopy(s.snapshot(renderer)) for s in sessions if s.traj.turns]


def jsonl_lines(trajs: Iterable[Trajectory]) -> Iterator[str]:
    """Lines exactly as the runner's store writes them."""
    for t in trajs:
        yield json.dumps(t.to_dict(), ensure_ascii=False) + "\n"


def export_bytes(trajs: list[Trajectory], fmt: str) -> bytes:
    """One of the runner's file formats, in memory (the exporters write files)."""
    with tempfile.TemporaryDirectory(prefix="agentroll-export-") as tmp:
        out = Path(tmp) / f"sessions.{fmt}"
        export(trajs, fmt, out)
        return out.read_bytes()


def save(trajs: list[Trajectory], run_dir: str) -> Path:
    """Write `RUN_DIR/trajectories.jsonl`, so `agentroll export RUN_DIR --format verl` takes it from there."""
    path = Path(run_dir) / TRAJECTORIES
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.writelines(jsonl_lines(trajs))
    return path
