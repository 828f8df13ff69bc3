"""`agentroll envs list`: the environments a run config can name (`environment: NAME`)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="envs_command", metavar="{list}", required=True)
    sub.add_parser("list", help="name, where it comes from, and what it is, one per line")


def run(args: argparse.Namespace) -> int:
    from agentroll.agent.env_registry import available, describe

    for name, target in sorted(available().items()):
        print(f"{name:<16} {target:<48} {describe(target)}")
    return 0
