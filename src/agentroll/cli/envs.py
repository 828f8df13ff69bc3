"""`agentroll envs list`: the environments a run config can name (`environment: NAME`).
`agentroll envs bfcl RUN_DIR...`: BFCL's accuracy per category over finished BFCL runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="envs_command", metavar="{list,bfcl}", required=True)
    sub.add_parser("list", help="name, where it comes from, and what it is, one per line")
    bfcl = sub.add_parser("bfcl", help="BFCL's accuracy per category (correct / total) of BFCL run directories")
    bfcl.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")


def run(args: argparse.Namespace) -> int:
    if args.envs_command == "bfcl":
        from agentroll.environments.bfcl import table
        from agentroll.rollout.store import TRAJECTORIES, read_records

        print(table(r for run_dir in args.run_dirs for r in read_records(run_dir / TRAJECTORIES)))
        return 0
    from agentroll.agent.env_registry import available, describe

    for name, target in sorted(available().items()):
        print(f"{name:<16} {target:<64} {describe(target)}")
    return 0
