"""`agentroll export RUN_DIR --format jsonl|parquet|hf|verl|trl --out PATH`: a run in a trainer's shape."""

from __future__ import annotations

import argparse
from pathlib import Path

from agentroll.errors import ConfigError
from agentroll.export import FORMATS, export
from agentroll.rollout.store import TRAJECTORIES, read_records
from agentroll.trajectory import Trajectory


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory (or its trajectories.jsonl)")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", required=True, help="output file (a folder for --format hf)")


def run(args: argparse.Namespace) -> int:
    n = export(load_trajectories(Path(args.run_dir)), args.format, Path(args.out))
    print(f"{n} rows ({args.format}) -> {args.out}")
    return 0


def load_trajectories(source: Path) -> list[Trajectory]:
    """Every complete trajectory of a run directory (a torn last line is skipped, the file left as is)."""
    path = source / TRAJECTORIES if source.is_dir() else source
    if not path.exists():
        raise ConfigError(f"{path}: no such file (is {source} a run directory?)")
    return [Trajectory.from_dict(r) for r in read_records(path)]
