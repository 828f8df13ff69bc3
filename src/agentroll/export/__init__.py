"""Exports (L2): a run's trajectories as JSONL, Parquet, Hugging Face `datasets`, verl's or TRL's shapes.

    export(trajectories, "verl", Path("out.parquet"))

Tool metadata and stop reasons are kept in every format. See tables.py for each format's columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from agentroll.errors import UnknownNameError
from agentroll.export.tables import flat_rows, trl_rows, verl_rows, write_hf, write_parquet
from agentroll.trajectory import Trajectory

FORMATS = ("jsonl", "parquet", "hf", "verl", "trl")


def export(trajs: Iterable[Trajectory], fmt: str, out: Path) -> int:
    """Write `trajs` in format `fmt` to `out` (a file; a folder for hf). Returns the number of rows."""
    trajs = list(trajs)
    if fmt == "jsonl":
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as f:
            for t in trajs:
                f.write(json.dumps(t.to_dict(), ensure_ascii=False) + "\n")
        return len(trajs)
    if fmt == "parquet":
        rows = flat_rows(trajs)
        write_parquet(rows, "flat", out)
    elif fmt == "hf":
        rows = flat_rows(trajs)
        write_hf(rows, out)
    elif fmt == "verl":
        rows = verl_rows(trajs)
        write_parquet(rows, "verl", out)
    elif fmt == "trl":
        rows = trl_rows(trajs)
        write_parquet(rows, "trl", out)
    else:
        raise UnknownNameError("export format", fmt, FORMATS)
    return len(rows)


__all__ = ["FORMATS", "export"]
