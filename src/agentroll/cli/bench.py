"""`agentroll bench [--only p1,p2,p3,p4,routing] [--quick] [--json] [--write [PATH]]`.

Runs the selected benchmarks (default: all), each measuring its ratio side by side in one run, and
prints a table with the targets and PASS/MISS; `--json` prints one JSON object instead (figures,
machine, date); `--write` also writes the results as markdown (default docs/benchmarks.md).
Progress goes to stderr. Exit status 0 whether or not a target is met: the figures are the result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agentroll.bench.report import BENCHMARKS, format_table, markdown, table
from agentroll.bench.report import run as run_benchmarks
from agentroll.errors import ConfigError

DEFAULT_DOC = "docs/benchmarks.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", help=f"comma list of benchmarks to run (default: all of {','.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="small variants (seconds to a minute or two each)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument(
        "--write", nargs="?", const=DEFAULT_DOC, metavar="PATH", help=f"write markdown results (default {DEFAULT_DOC})"
    )


def run(args: argparse.Namespace) -> int:
    names = _selected(args.only)
    results = run_benchmarks(names, quick=args.quick, say=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(results))
    else:
        print(format_table(table(results)))
    if args.write:
        path = Path(args.write)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown(results, _command(names, args.quick)))
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _selected(only: str | None) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"--only: unknown benchmark(s) {unknown}; choose from {','.join(BENCHMARKS)}")
    return names


def _command(names: list[str], quick: bool) -> str:
    only = "" if names == list(BENCHMARKS) else f" --only {','.join(names)}"
    return f"agentroll bench{only}{' --quick' if quick else ''} --write"
