"""`agentroll run CONFIG.yaml [--out DIR] [--resume] [--ray [ADDRESS]]`: run a dataset of episodes to a run directory.

CONFIG may also be a run directory (its run.json holds the config): `agentroll run RUN_DIR --resume`.
`--ray` plays the episodes on Ray workers (a new local Ray instance, or the cluster at ADDRESS); this
process still writes the run directory, exactly once per episode. Ray is imported only then.
Prints the summary and where the trajectories are; the progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from agentroll.rollout.config import config_from_dict, load_config
from agentroll.rollout.ray_executor import HANG_TIMEOUT_S
from agentroll.rollout.runner import run as run_rollout
from agentroll.rollout.store import MANIFEST

# Stop reasons of a failure outside the policy (an engine outage, a lost worker), worth running again.
RERUN_DEFAULT = ("engine_error", "timeout", "error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config YAML, or an existing run directory (with --resume)")
    parser.add_argument("--out", help="run directory (default: the config's output_dir, else runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="finish a run: run only the episodes not on disk")
    parser.add_argument("--overwrite", action="store_true", help="replace the trajectories already in the run dir")
    parser.add_argument(
        "--rerun-errors",
        nargs="?",
        const=",".join(RERUN_DEFAULT),
        metavar="REASONS",
        help="with --resume: run again the episodes that ended with these stop reasons (default: "
        f"{','.join(RERUN_DEFAULT)}); their old lines are set aside in RUN_DIR/set-aside-*.jsonl",
    )
    parser.add_argument("--limit", type=int, help="use this many dataset rows")
    parser.add_argument("--samples", type=int, dest="samples_per_task", help="samples per task")
    parser.add_argument("--concurrency", type=int, help="episodes in flight")
    parser.add_argument("--engine", help="engine spec (embedded | vllm://H:P | ...)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run episodes on Ray workers: no value starts a local Ray, else ray.init(address=ADDRESS)",
    )
    parser.add_argument("--ray-workers", type=int, default=2, metavar="N", help="Ray worker actors (default 2)")
    parser.add_argument(
        "--ray-hang-timeout",
        type=float,
        default=HANG_TIMEOUT_S,
        metavar="S",
        help=f"a Ray worker whose loop answers no ping for S seconds is killed, its episodes re-run "
        f"(default {HANG_TIMEOUT_S:g}; 0 turns the check off)",
    )


def run(args: argparse.Namespace) -> int:
    # vLLM logs INFO to stdout; keep stdout for our report (its warnings still reach stderr).
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    overrides = {
        "limit": args.limit,
        "samples_per_task": args.samples_per_task,
        "concurrency": args.concurrency,
        "engine": args.engine,
    }
    source = Path(args.config)
    if source.is_dir():  # a run directory: its manifest holds the config it was started with
        raw = json.loads((source / MANIFEST).read_text(encoding="utf-8"))["config"]
        config = config_from_dict({**raw, "output_dir": str(source)}, **overrides)
    else:
        config = load_config(source, **overrides)
    run_dir = Path(args.out or config.output_dir)
    executor = None
    if args.ray is not None:
        from agentroll.rollout.ray_executor import RayExecutor

        hang = args.ray_hang_timeout or None
        executor = RayExecutor(config, address=args.ray, workers=args.ray_workers, hang_timeout_s=hang)
    summary = asyncio.run(
        run_rollout(
            config,
            run_dir,
            resume=args.resume,
            overwrite=args.overwrite,
            rerun=[r.strip() for r in (args.rerun_errors or "").split(",") if r.strip()],
            progress=not args.no_progress,
            executor=executor,
        )
    )
    _print_summary(summary)
    return 0


def _print_summary(s: dict) -> None:
    reward = s["reward"]
    mean = "-" if reward["mean"] is None else f"{reward['mean']:.3f} (std {reward['std']:.3f}, n {reward['n']})"
    stops = ", ".join(f"{k} {v}" for k, v in s["stop_reasons"].items())
    without = f", {s['reward_errors']} episodes without one (reward_error)" if s.get("reward_errors") else ""
    lines = [
        f"episodes      {s['episodes']}/{s['planned']} ({s['new_episodes']} this run, {s['errors']} errors)",
        f"stop reasons  {stops or '-'}",
        f"reward        {mean}{without}",
        f"tool calls    {s['tool_calls_made']} made, {s['tool_calls_ran']} ran ({s['tool_errors']} errors); "
        f"{s['answers_from_tools']} final answers read off a tool result",
        f"throughput    {s['sampled_tokens_per_s']} sampled tok/s over {s['wall_s']:.1f} s",
        f"drift         {s['drift_count']} trajectories",
        f"trajectories  {s['trajectories']}",
        f"summary       {Path(s['trajectories']).parent / 'summary.json'}",
    ]
    if s.get("executor") == "ray":
        lines.insert(
            -2,
            f"ray           {s['ray_workers']} workers, {s['worker_restarts']} restarted "
            f"({s['hung_workers']} hung), "
            f"{s['rerun_episodes']} episodes re-run, {s['duplicates_dropped']} duplicate results dropped",
        )
    print("\n".join(lines))


if __name__ == "__main__":  # the embedded engine spawns workers: guard the entry point
    from agentroll.cli.main import main

    sys.exit(main(["run", *sys.argv[1:]]))
