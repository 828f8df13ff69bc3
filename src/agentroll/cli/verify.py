"""`agentroll verify RUN_DIR [--engine SPEC | --reference hf]`: recompute every sampled logprob.

Without either, the reference is used where the run's logprobs need it (sampled at a temperature other
than 0 or 1, or truncated) and its model is known; else the run's own engine.

`--engine` (default: the run's own engine) scores the tokens teacher-forced on an engine: the tokens
and their alignment are right. `--reference hf` recomputes them with Hugging Face transformers on the
model's checkpoint, under each trajectory's recorded convention (temperature, top-k/top-p/min-p), the
way a trainer does, independently of the engine: the logprobs are those of the sampling distribution.
Each token is checked against the weights of the policy version that sampled it (rollout/versions.py: the
versions a run recorded, their kept weights, or `--model` folders matched by fingerprint); tokens whose
version's weights are not at hand are a "version mismatch", not a logprob breach.
Prints one JSON report; exits 1 on a breach or a version mismatch (see rollout.verify).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from agentroll.agent.records import logprobs_convention
from agentroll.cli.export import load_trajectories
from agentroll.engines.registry import make_engine, parse_spec
from agentroll.errors import ConfigError
from agentroll.rollout.store import MANIFEST
from agentroll.rollout.verify import engine_checkable, verify_trajectories, verify_with_reference
from agentroll.types import SamplingParams


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory")
    parser.add_argument("--engine", help="engine spec (default: the run's own, from run.json)")
    parser.add_argument("--concurrency", type=int, default=8, help="sequences scored at once")
    parser.add_argument("--reference", choices=["hf"], help="recompute with transformers instead of an engine")
    parser.add_argument(
        "--model",
        action="append",
        help="--reference: a Hugging Face checkpoint folder (repeatable); matched to the run's policy versions by "
        "fingerprint (RUN_DIR/versions.jsonl); default: each version's kept weights, and the run's model",
    )
    parser.add_argument("--dtype", default="float32", help="--reference: float32 (default), bfloat16, float16")
    parser.add_argument("--limit", type=int, help="check only the first N trajectories")
    parser.add_argument(
        "--write-raw",
        action="store_true",
        help="--reference: also write RUN_DIR/raw_logprobs.jsonl, the model's own (temperature 1) logprobs of every "
        "sampled token, aligned with each segment's tokens (null where not sampled)",
    )


def run(args: argparse.Namespace) -> int:
    # vLLM logs INFO to stdout; keep stdout for our report (its warnings still reach stderr).
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    run_dir = Path(args.run_dir)
    if args.reference or (not args.engine and _needs_reference(run_dir, args)):
        report = _verify_reference(run_dir, args)
    else:
        report = asyncio.run(_verify(run_dir, args.engine or _run_engine(run_dir), args.concurrency, args.limit))
    print(json.dumps(report, indent=2))
    for why in report.get("version_mismatch_why", ()):
        print(why, file=sys.stderr)  # not a logprob breach: the weights that sampled these tokens are missing
    return 0 if report["ok"] else 1


def _verify_reference(run_dir: Path, args: argparse.Namespace) -> dict:
    from agentroll.rollout.versions import VERSIONS, VersionReferences

    trajs = load_trajectories(run_dir)[: args.limit]
    models = [Path(m) for m in args.model or ()]
    default = None
    if not models:
        try:
            default = Path(_run_model(run_dir))
        except ConfigError:
            if not (run_dir / VERSIONS).exists():
                raise  # nothing else names the weights
    seen = {v for t in trajs for turn in t.turns for v in turn.token_versions()}
    references = VersionReferences(run_dir, models=models, default=default, dtype=args.dtype, seen=seen)
    raw_rows: dict[tuple[str, int], dict] = {}

    def keep_raw(traj: Any, index: int, positions: list[int], scores: Any) -> None:
        empty = {
            "id": traj.id,
            "segment": index,
            "dtype": args.dtype,
            "raw_logprobs": [None] * len(traj.segments[index]),
        }
        row = raw_rows.setdefault((traj.id, index), empty)
        for i, lp in zip(positions, scores.raw_logprobs, strict=True):
            row["raw_logprobs"][i] = lp

    report = verify_with_reference(
        references, trajs, fallback=_run_sampling(run_dir), on_segment=keep_raw if args.write_raw else None
    )
    if args.write_raw:
        out = run_dir / "raw_logprobs.jsonl"
        out.write_text("".join(json.dumps(r) + "\n" for r in raw_rows.values()), encoding="utf-8")
        report["raw_logprobs"] = str(out)
    weights = {str(v): str(p) for v, p in sorted(references.folders.items())}
    given = {"models_given": references.matches()} if references.recorded and models else {}
    if references.assumed:  # no versions.jsonl: the one model checks the run's one version, as the user says
        given["assumed"] = {str(v): p for v, p in references.assumed.items()}
    return {"run_dir": str(run_dir), "reference": "hf", "weights": weights, **given, "dtype": args.dtype, **report}


async def _verify(run_dir: Path, spec: str, concurrency: int, limit: int | None) -> dict:
    trajs = load_trajectories(run_dir)[:limit]
    engine = make_engine(spec)
    try:
        report = await verify_trajectories(engine, trajs, concurrency=concurrency)
    finally:
        await engine.aclose()
    return {"run_dir": str(run_dir), "engine": spec, **report}


def _needs_reference(run_dir: Path, args: argparse.Namespace) -> bool:
    """The default check: the reference where the run's logprobs are of a distribution other than the model's
    own (which an engine's teacher-forced pass cannot give) and the checkpoint is known."""
    if args.model is None and parse_spec(_run_engine(run_dir).split(",")[0])[0] != "embedded":
        return False
    sampling = _run_sampling(run_dir) or {}
    return not engine_checkable({**sampling, "mode": "processed"})


def _run_config(run_dir: Path) -> dict:
    manifest = run_dir / MANIFEST
    return json.loads(manifest.read_text(encoding="utf-8"))["config"] if manifest.exists() else {}


def _run_engine(run_dir: Path) -> str:
    return _run_config(run_dir).get("engine", "embedded")


def _run_model(run_dir: Path) -> str:
    """The checkpoint the run's engine served: an embedded engine's model (default: SmolLM2), else ask."""
    spec = _run_engine(run_dir)
    scheme, _, options = parse_spec(spec.split(",")[0])
    if scheme == "embedded":
        if options.get("model"):
            return options["model"]
        from agentroll.engines.checkpoint import ensure_default_checkpoint

        return str(ensure_default_checkpoint())
    raise ConfigError(f"the run's engine is {spec!r}: pass --model DIR, the Hugging Face checkpoint it serves")


def _run_sampling(run_dir: Path) -> dict | None:
    """For trajectories recorded before each one named its logprobs convention: the run's sampling."""
    sampling = _run_config(run_dir).get("episode", {}).get("sampling")
    return None if sampling is None else {**logprobs_convention(SamplingParams(**sampling)), "mode": "unknown"}


if __name__ == "__main__":  # the embedded engine spawns workers: guard the entry point
    from agentroll.cli.main import main

    sys.exit(main(["verify", *sys.argv[1:]]))
