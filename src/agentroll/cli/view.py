"""`agentroll view RUN_DIR [-o OUT]`: write a self-contained HTML report of a run directory.

The file needs no network to open: charts, episode list with filters, and per episode the token
strip coloured by loss mask (logprob on hover), turns, tool calls and results.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agentroll.view.page import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory (run.json, trajectories.jsonl, summary.json)")
    parser.add_argument("-o", "--out", help="output HTML file (default: RUN_DIR/report.html)")


def run(args: argparse.Namespace) -> int:
    out, model = write_report(Path(args.run_dir), Path(args.out) if args.out else None)
    size = out.stat().st_size
    print(f"wrote {out} ({len(model['episodes'])} episodes, {size / 1e6:.2f} MB)")
    if model["run"]["decode_note"]:
        print(f"note: {model['run']['decode_note']}")
    return 0
