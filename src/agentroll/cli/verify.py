"""`agentroll verify RUN_DIR [--engine SPEC]`: recompute every sampled logprob teacher-forced.

Prints one JSON report (max |delta| over trainable tokens, where, drift count). Exits 1 when the
delta exceeds 1e-3, any trajectory drifted, or a trajectory is not token-exact.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from agentroll.cli.export import load_trajectories
from agentroll.engines.registry import make_engine
from agentroll.rollout.store import MANIFEST
from agentroll.rollout.verify import verify_trajectories


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory")
    parser.add_argument("--engine", help="engine spec (default: the run's own, from run.json)")
    parser.add_argument("--concurrency", type=int, default=8, help="sequences scored at once")


def run(args: argparse.Namespace) -> int:
    # vLLM logs INFO to stdout; keep stdout for our report (its warnings still reach stderr).
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    run_dir = Path(args.run_dir)
    report = asyncio.run(_verify(run_dir, args.engine or _run_engine(run_dir), args.concurrency))
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


async def _verify(run_dir: Path, spec: str, concurrency: int) -> dict:
    trajs = load_trajectories(run_dir)
    engine = make_engine(spec)
    try:
        report = await verify_trajectories(engine, trajs, concurrency=concurrency)
    finally:
        await engine.aclose()
    return {"run_dir": str(run_dir), "engine": spec, **report}


def _run_engine(run_dir: Path) -> str:
    manifest = run_dir / MANIFEST
    if not manifest.exists():
        return "embedded"
    return json.loads(manifest.read_text(encoding="utf-8"))["config"].get("engine", "embedded")


if __name__ == "__main__":  # the embedded engine spawns workers: guard the entry point
    from agentroll.cli.main import main

    sys.exit(main(["verify", *sys.argv[1:]]))
