"""GRPO with TRL on SmolLM2-135M-Instruct, the embedded engine and the calculator tool, on CPU.

    python examples/train_gsm8k_calculator.py --out runs/train_gsm8k               # 26 steps, ~37 minutes on 2 cores
    python examples/train_gsm8k_calculator.py --steps 2 --prompts 1 --group 2      # the loop turns (CI)
    python examples/train_gsm8k_calculator.py --steps 3 --bf16 --engine "embedded?dtype=bfloat16"  # bf16 figures

TRL's GRPOTrainer owns the optimizer and the loss; agentroll plays the episodes (agentroll.integrations.trl:
multi-turn calls, tool results masked out, behaviour logprobs) and takes the trainer's weights into the
engine after every step. Each step's episodes are a run directory (OUT/train-step-NNNNN), the per-step
metrics are OUT/steps.jsonl, and OUT/learning_curve.png plots them. It prints the mean reward of the first
and last 5 steps with their spread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=26)
    parser.add_argument("--prompts", type=int, default=3, help="questions per step")
    parser.add_argument("--group", type=int, default=4, help="episodes per question (GRPO's num_generations)")
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--out", type=Path, default=Path("runs/train_gsm8k"))
    parser.add_argument("--config", type=Path, default=HERE / "train_gsm8k_calculator.yaml")
    parser.add_argument("--plot", type=Path, default=None, help="also write the learning curve here")
    parser.add_argument("--bf16", action="store_true", help="train under bf16 autocast (TRL's default; GPU-like)")
    parser.add_argument("--engine", default=None, help="engine spec instead of the config's (embedded?dtype=bfloat16)")
    args = parser.parse_args()

    from trl import GRPOConfig, GRPOTrainer

    from agentroll.engines.checkpoint import ensure_default_checkpoint
    from agentroll.integrations.trl import TRLRollout, trl_dataset
    from agentroll.rollout.config import load_config

    config = load_config(args.config, engine=args.engine)
    model_dir = ensure_default_checkpoint()  # the engine serves the same checkpoint the trainer starts from
    with TRLRollout(config, args.out) as rollout:
        trl_args = GRPOConfig(
            output_dir=str(args.out / "trainer"),
            max_steps=args.steps,
            # one GRPO group per forward/backward (eager attention's memory grows with the batch), a step of
            # `prompts` groups; one generation per step, so every step trains on its own policy's episodes
            per_device_train_batch_size=args.group,
            num_generations=args.group,
            gradient_accumulation_steps=args.prompts,
            learning_rate=args.lr,
            beta=0.0,  # no reference model: one forward and backward per step
            gradient_checkpointing=False,  # TRL's default recomputes activations: memory we have, time we do not
            temperature=config.episode.sampling.temperature,  # what the episodes sample at (checked)
            reward_weights=rollout.reward_weights,
            model_init_kwargs={"dtype": "float32"},
            bf16=args.bf16,  # TRL turns bf16 autocast on by default; fp32 is the exact figure
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=0,
        )
        trainer = GRPOTrainer(
            model=str(model_dir),
            args=trl_args,
            train_dataset=trl_dataset(config),
            reward_funcs=rollout.reward_funcs,
            rollout_func=rollout,
        )
        started = time.monotonic()
        trainer.train()
        wall_s = time.monotonic() - started
    (args.out / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
    steps = [s for s in rollout.steps if s["mode"] == "train"]
    report = summarize(steps, wall_s)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    plot(steps, args.out / "learning_curve.png")
    if args.plot:
        plot(steps, args.plot)


def summarize(steps: list[dict], wall_s: float) -> dict:
    """First 5 steps against the last 5: mean reward and its spread (sample std of the step means)."""

    def window(part: list[dict]) -> dict:
        means = [s["reward_mean"] for s in part]
        return {
            "steps": [s["step"] for s in part],
            "reward_mean": statistics.fmean(means),
            "reward_std_of_step_means": statistics.stdev(means) if len(means) > 1 else 0.0,
            "well_formed_call_share": statistics.fmean(s["well_formed_call_share"] for s in part),
        }

    k = min(5, len(steps))
    ratios = [s["trainer_ratio"] for s in steps if "trainer_ratio" in s]
    return {
        "steps": len(steps),
        "episodes": sum(s["episodes"] for s in steps),
        "wall_s": round(wall_s, 1),
        "first": window(steps[:k]),
        "last": window(steps[-k:]),
        "trainer_ratio_share_within_1e-3_min": min((r["share_within_1e-3"] for r in ratios), default=None),
        "trainer_ratio_min": min((r["ratio"]["min"] for r in ratios if r["ratio"]), default=None),
        "trainer_ratio_max": max((r["ratio"]["max"] for r in ratios if r["ratio"]), default=None),
        "mean_tokens_per_s": statistics.fmean(s["tokens_per_s"] for s in steps),
        "mean_step_s": statistics.fmean(s["step_s"] for s in steps if "step_s" in s) if len(steps) > 1 else None,
    }


def plot(steps: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s["step"] for s in steps]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), constrained_layout=True)
    ax = axes[0][0]
    ax.plot(x, [s["reward_mean"] for s in steps], marker="o", ms=3, label="reward (mean)")
    for name in steps[0]["rewards"] if steps else []:
        ax.plot(x, [s["rewards"].get(name, 0.0) for s in steps], lw=1, alpha=0.7, label=name)
    ax.set_title("reward per step")
    ax.legend(fontsize=8)
    ax = axes[0][1]
    ax.plot(x, [s["well_formed_call_share"] for s in steps], marker="o", ms=3, color="tab:green")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("share of first turns with a well-formed call")
    ax = axes[1][0]
    ratio = [s.get("trainer_ratio", {}).get("ratio", {}) for s in steps]
    ax.plot(x, [r.get("min", float("nan")) for r in ratio], label="min", color="tab:red")
    ax.plot(x, [r.get("max", float("nan")) for r in ratio], label="max", color="tab:purple")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_title("importance ratio exp(TRL - rollout), trained tokens")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    ax.plot(x, [s["tokens_per_s"] for s in steps], label="rollout tok/s")
    ax.set_title("rollout tokens/s and step time (s)")
    twin = ax.twinx()
    twin.plot(x, [s.get("step_s", float("nan")) for s in steps], color="tab:orange", label="step s")
    for a in axes.flat:
        a.set_xlabel("trainer step")
    fig.suptitle("GRPO (TRL) on SmolLM2-135M with agentroll episodes: GSM8K + calculator, 2 CPU cores")
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
