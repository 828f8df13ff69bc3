"""`agentroll eval CONFIG [--engine SPEC | --model DIR | --compare A B]`: how good a checkpoint is at a config's tasks.

Plays the config's dataset with the one runner (each candidate in its own run directory under --out, so an
interrupted eval finishes where it stopped), then reports pass@1 and pass@k over the samples of each task,
the mean reward with a 95% interval, tool use (calls per episode, calls that ran, answers read off a tool
result) and, with --by FIELD, the same per category. `--compare A B` evaluates two engines or checkpoint
folders on the same tasks and seeds and adds the paired difference B - A with its interval.
Writes OUT/eval.json and OUT/eval.svg; prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from agentroll.cli.export import load_trajectories
from agentroll.errors import ConfigError
from agentroll.rollout.config import load_config
from agentroll.rollout.dataset import load_tasks
from agentroll.rollout.evaluate import compare, evaluate, score_run
from agentroll.rollout.runner import planned_ids
from agentroll.rollout.runner import run as run_rollout
from agentroll.rollout.store import MANIFEST
from agentroll.view.charts import pass_chart


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config YAML: its dataset, prompt, tools, sampling and rewards")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--engine", help="engine spec to evaluate (default: the config's)")
    which.add_argument("--model", help="a Hugging Face checkpoint folder, on the embedded engine")
    which.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two engine specs or checkpoint folders")
    parser.add_argument("--samples", type=int, dest="samples_per_task", help="samples per task (default: config's)")
    parser.add_argument("--limit", type=int, help="use this many dataset rows")
    parser.add_argument("--offset", type=int, help="skip this many dataset rows first (held-out tasks)")
    parser.add_argument(
        "--metric", help="the reward component an episode succeeds on, or 'reward' for the total (default: "
        "exact_match when the config has it, else reward)",
    )  # fmt: skip
    parser.add_argument("--threshold", type=float, default=1.0, help="success: metric >= this (default 1.0)")
    parser.add_argument("--k", default="1,2,4,8", help="pass@k for these k (those <= samples per task)")
    parser.add_argument("--by", metavar="FIELD", help="per-category tables by this dataset field")
    parser.add_argument("--out", help="output folder (default: runs/eval/<config name>)")
    parser.add_argument("--overwrite", action="store_true", help="play the episodes again even if on disk")
    parser.add_argument("--concurrency", type=int, help="episodes in flight")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    config = load_config(args.config, limit=args.limit, samples_per_task=args.samples_per_task,
                         concurrency=args.concurrency)  # fmt: skip
    if args.offset is not None:
        config = config.model_copy(update={"dataset": config.dataset.model_copy(update={"offset": args.offset})})
    metric = args.metric or ("exact_match" if "exact_match" in config.rewards else "reward")
    if metric != "reward" and metric not in config.rewards:
        raise ConfigError(f"--metric {metric}: not a reward of this config (it has {sorted(config.rewards)})")
    out = Path(args.out or Path("runs") / "eval" / Path(args.config).stem)
    specs = args.compare or [args.model or args.engine or config.engine]
    candidates = _labelled([_as_spec(s) for s in specs])
    ks = sorted({int(k) for k in args.k.split(",") if k.strip()})
    tasks = load_tasks(config)
    planned = set(planned_ids(tasks, config.samples_per_task))
    reports: dict[str, Any] = {}
    scores = {}
    for label, spec in candidates.items():
        run_dir = out / label
        one = config.model_copy(update={"engine": spec, "output_dir": str(run_dir)})
        resume = _resumable(run_dir, spec, overwrite=args.overwrite)
        asyncio.run(run_rollout(one, run_dir, resume=resume, overwrite=not resume, progress=not args.no_progress))
        played = [t for t in load_trajectories(run_dir) if t.id in planned]  # an earlier, larger eval: not those
        scores[label] = score_run(played, tasks, metric=metric, threshold=args.threshold, by=args.by)
        reports[label] = {"engine": spec, **evaluate(scores[label], ks)}
    result: dict[str, Any] = {"config": str(args.config), "metric": metric, "threshold": args.threshold,
                              "samples_per_task": config.samples_per_task, "candidates": reports}  # fmt: skip
    if args.compare:
        a, b = candidates
        result["comparison"] = {"base": a, "other": b, **compare(scores[a], scores[b])}
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "eval.svg").write_text(pass_chart(result), encoding="utf-8")
    print(_table(result))
    print(f"report        {out / 'eval.json'}\nchart         {out / 'eval.svg'}")
    return 0


def _as_spec(s: str) -> str:
    """A checkpoint folder means the embedded engine on that model; anything else is an engine spec."""
    return f"embedded?model={Path(s).resolve()}" if Path(s).is_dir() else s


def _labelled(specs: list[str]) -> dict[str, str]:
    """A run-folder name per spec: the checkpoint folder's name, else the spec's scheme and address."""
    labels = []
    for spec in specs:
        head, _, query = spec.partition("?")
        model = dict(parse_qsl(query)).get("model")  # the registry's option syntax (engines/registry.py)
        name = Path(model).name if model else head
        labels.append(re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "engine")
    if len(set(labels)) < len(labels):  # the same name twice (one spec compared with itself)
        labels = [f"{label}-{i}" for i, label in enumerate(labels)]
    return dict(zip(labels, specs, strict=True))


def _resumable(run_dir: Path, spec: str, *, overwrite: bool) -> bool:
    """Finish an earlier eval of the same engine in run_dir; refuse to mix in another engine's episodes."""
    manifest = run_dir / MANIFEST
    if overwrite or not manifest.exists():
        return False
    was = json.loads(manifest.read_text(encoding="utf-8"))["config"].get("engine")
    if was != spec:
        raise ConfigError(f"{run_dir} holds an eval of {was!r}, not {spec!r}: use --overwrite or another --out")
    return True


def _table(result: dict[str, Any]) -> str:
    """The terminal table: one row per candidate (and per category), then the paired difference."""
    first = next(iter(result["candidates"].values()))
    passes = [k for k in first if k.startswith("pass@")]
    head = ["candidate", "tasks", *passes, "reward", "calls/ep", "ran/ep", "from tool"]
    rows = []
    for label, r in result["candidates"].items():
        for name, part in [(label, r), *((f"  {c}", p) for c, p in r.get("categories", {}).items())]:
            rows.append([name, str(part["tasks"]), *(_ci(part.get(k)) for k in passes), _ci(part["reward"]),
                         _num(part["tool_calls_per_episode"]), _num(part["tool_calls_ran_per_episode"]),
                         _num(part["answers_from_tools"])])  # fmt: skip
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)) for row in [head, *rows]]
    lines.append(f"metric        {result['metric']} >= {result['threshold']:g}, "
                 f"{result['samples_per_task']} samples per task; intervals: 95% bootstrap over tasks")  # fmt: skip
    if "comparison" in result:
        c = result["comparison"]
        success, reward = _ci(c["success_rate_difference"], sign=True), _ci(c["reward_difference"], sign=True)
        lines.append(f"{c['other']} - {c['base']} on {c['tasks']} tasks: success rate {success}, reward {reward}")
    return "\n".join(lines)


def _ci(v: dict[str, Any] | None, *, sign: bool = False) -> str:
    if not v or v["mean"] is None:
        return "-"
    f = "{:+.3f}" if sign else "{:.3f}"
    return f"{f.format(v['mean'])} [{f.format(v['low'])}, {f.format(v['high'])}]"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"
