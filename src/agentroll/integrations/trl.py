"""TRL's GRPOTrainer driven by agentroll episodes: a `rollout_func` (and the reward functions that go with it).

    rollout = TRLRollout(load_config("examples/gsm8k_calculator.yaml"), Path("runs/trl"))
    trainer = GRPOTrainer(model=model_dir, args=GRPOConfig(...), train_dataset=trl_dataset(rollout.config),
                          reward_funcs=rollout.reward_funcs, rollout_func=rollout)
    trainer.args.reward_weights = rollout.reward_weights

TRL hands the rollout function its slice of prompts (each repeated `num_generations` times, in a row). For
each block agentroll plays `num_generations` episodes of that prompt's task with the one runner
(rollout/runner.py: episode loop, tools, rewards), into RUN_DIR/train-step-NNNNN/ (a run directory like any
other: `agentroll verify RUN_DIR/train-step-00003 --reference hf` checks the rows TRL trained on). Each
episode becomes one TRL row exactly as recorded: `prompt_ids` (the first prompt), `completion_ids` (every
token after it: sampled turns and the tool results between them), `logprobs` (of the sampling distribution;
0 where a token was not sampled) and `env_mask` (1 = sampled, trained; 0 = tool or template tokens).
An episode that spans several segments (a template that rewrites history) has no one-prompt-one-completion
form: it is refused with an error, never split or re-tokenized. An episode that never ran (its environment's
setup failed) is a filler row with reward None, which TRL leaves out of its group; steps.jsonl says why.

Before the episodes of a step, when the trainer's `global_step` has advanced, the trainer's current weights
are pushed into the engine (`engine.update_weights(state_dict, version=global_step)`; the embedded engine and
vLLM servers take them in place), so every sampled token carries the step that produced its policy. Each
version's fingerprint goes into its step directory's versions.jsonl, and the last `keep_versions` (default 2)
are kept in RUN_DIR/weights/, so `agentroll verify RUN_DIR/train-step-N --reference hf` checks a step's tokens
against the weights that sampled them (rollout/versions.py).

TRL recomputes logprobs as log_softmax(logits / temperature): the episode sampling must be exactly that
(the trainer's temperature; no top-p, top-k, min-p or constraint, which TRL would not recompute); anything
else is refused. Unless `ratio_check="off"`, TRL's own forward (the trainer's
`_get_per_token_logps_and_entropies`, what its loss uses) scores the batch before the optimizer step, and the
importance ratio exp(trainer - rollout) is logged per step: it must be 1 within 1e-3 on >= 99.9% of trained
tokens in fp32; a step that breaches it warns (`ratio_check="warn"`, the default) or raises RatioBreach
(`"error"`). Per-step metrics go to RUN_DIR/steps.jsonl and, as `agentroll/...`, into TRL's own logs.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import threading
import time
import warnings
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from agentroll.agent import Task
from agentroll.engines.base import Engine, WeightUpdatable
from agentroll.errors import ConfigError, RatioBreach
from agentroll.export.rows import segment_rows, split_row
from agentroll.rollout.config import RunConfig
from agentroll.rollout.dataset import load_tasks
from agentroll.rollout.executor import Environments, LocalExecutor, build_engine, build_toolset, episode_id
from agentroll.rollout.runner import run
from agentroll.rollout.verify import REQUIRED_SHARE, ratio_summary
from agentroll.rollout.versions import WEIGHTS, WeightKeeper, engine_model_dir, write_versions
from agentroll.tools import Toolset
from agentroll.trajectory import Trajectory
from agentroll.types import Message, SamplingParams

T = TypeVar("T")
TOLERANCE = 1e-3
__all__ = ["TRLRollout", "TaskIndex", "check_sampling", "one_segment_row", "to_trl_rows", "trl_dataset"]


def trl_dataset(config: RunConfig) -> Any:
    """The run config's tasks as a `datasets.Dataset` for GRPOTrainer: `prompt` (the task's opening messages),
    `task_id` and `answer` (columns TRL hands to reward functions)."""
    from datasets import Dataset

    rows = [
        {"prompt": [_plain(m) for m in t.messages], "task_id": t.id, "answer": _text(t.answer)}
        for t in load_tasks(config)
    ]
    return Dataset.from_list(rows)


def check_sampling(sampling: SamplingParams, temperature: float) -> None:
    """Refuse sampling whose logprobs TRL cannot recompute (it scales logits by `temperature`, nothing else)."""
    wrong = []
    if not math.isclose(sampling.temperature, temperature):
        wrong.append(f"temperature {sampling.temperature} (the trainer's is {temperature})")
    if sampling.top_p != 1.0:
        wrong.append(f"top_p {sampling.top_p}")
    if sampling.top_k not in (-1, 0):
        wrong.append(f"top_k {sampling.top_k}")
    if sampling.min_p != 0.0:
        wrong.append(f"min_p {sampling.min_p}")
    if sampling.repetition_penalty != 1.0:
        wrong.append(f"repetition_penalty {sampling.repetition_penalty}")
    if sampling.json_schema is not None or sampling.structural_tag is not None:
        wrong.append("a json_schema / structural_tag constraint (logprobs of the constrained distribution)")
    if wrong:
        raise ConfigError(
            f"episode sampling {', '.join(wrong)}: TRL recomputes logprobs as log_softmax(logits / {temperature}), "
            f"so its importance ratios would be wrong; set episode.sampling.temperature to {temperature} "
            "(GRPOConfig.temperature) and leave top_p, top_k, min_p, repetition_penalty and constraints unset"
        )


def one_segment_row(traj: Trajectory) -> dict[str, Any]:
    """The episode's prompt/response row; refused (an error) when it spans several segments or has none."""
    if not traj.segments:
        raise ConfigError(f"episode {traj.id} has no tokens: {no_tokens_cause(traj)}")
    if len(traj.segments) != 1:
        raise ConfigError(
            f"episode {traj.id} has {len(traj.segments)} segments ({', '.join(s.reason for s in traj.segments)}): "
            "TRL's GRPOTrainer takes one prompt and one completion per sample, and splitting the episode would "
            "break its group; use a renderer whose template keeps history (no segment breaks) for TRL"
        )
    return split_row(segment_rows(traj)[0], logprob_fill=0.0)


def no_tokens_cause(traj: Trajectory) -> str:
    """Why an episode holds no tokens at all (its environment's setup failed, or an error before the first render)."""
    return f"it stopped with {traj.stop_reason!r} before its first turn ({traj.metadata.get('error') or 'no error'})"


def to_trl_rows(trajs: Sequence[Trajectory], *, filler_id: int) -> dict[str, list[list[Any]]]:
    """TRL's rollout_func shape, one row per episode, tokens as recorded. An episode that sampled nothing (an
    engine error before its first token) gets one `filler_id` token with env_mask 0: no loss, its reward. One
    with no tokens at all (no_tokens_cause) is a filler row too, and its reward None (`_reward_fields`): TRL
    leaves it out of its group, so GRPO's group shape holds and nothing is learnt from an episode that never ran."""
    out: dict[str, list[list[Any]]] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_mask": []}
    for traj in trajs:
        if not traj.segments:
            row = {"prompt_ids": [filler_id], "response_ids": [], "response_logprobs": [], "response_mask": []}
        else:
            row = one_segment_row(traj)
        if not row["response_ids"]:
            row.update(response_ids=[filler_id], response_logprobs=[0.0], response_mask=[0])
        out["prompt_ids"].append(row["prompt_ids"])
        out["completion_ids"].append(row["response_ids"])
        out["logprobs"].append(row["response_logprobs"])
        out["env_mask"].append(row["response_mask"])
    return out


class TRLRollout:
    """A GRPOTrainer `rollout_func` that plays agentroll episodes; see the module doc.

    `engine` / `toolset` override what the config names (the caller keeps ownership of what it passes).
    The engine runs on this object's own event loop thread (TRL calls the rollout function synchronously);
    call `close()` (or use it as a context manager) when training is done.
    """

    def __init__(
        self,
        config: RunConfig,
        run_dir: Path,
        *,
        engine: Engine | None = None,
        toolset: Toolset | None = None,
        ratio_check: Literal["off", "warn", "error"] = "warn",
        keep_versions: int = 2,
    ):
        if config.episode.tool_choice_enforcement == "guided":
            raise ConfigError(
                "tool_choice_enforcement: guided samples calls from the constrained distribution; TRL recomputes "
                "the free policy's logprobs, so its importance ratio would be off on every guided token (use opener)"
            )
        if ratio_check not in ("off", "warn", "error"):
            raise ConfigError(f"ratio_check {ratio_check!r}: expected off, warn or error")
        self.config, self.run_dir, self.ratio_check = config, Path(run_dir), ratio_check
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.tasks = TaskIndex(load_tasks(config))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="agentroll-trl", daemon=True)
        self._thread.start()
        self._own_engine, self._own_tools = engine is None, toolset is None
        self.engine = engine or build_engine(config)
        self.toolset = toolset or build_toolset(config)
        if self._own_tools:
            self._call(self.toolset.start())
        self.version = self.engine.policy_version if isinstance(self.engine, WeightUpdatable) else 0
        # Each step's weights, for `agentroll verify RUN_DIR/train-step-N --reference hf`: fingerprints, and the
        # last `keep_versions` as folders in RUN_DIR/weights (rollout/versions.py)
        self._call(self.engine.models())  # started, and a server has named its model folder
        self.keeper = WeightKeeper(self.run_dir / WEIGHTS, keep=keep_versions, model_dir=engine_model_dir(self.engine))
        self._call(asyncio.to_thread(self.keeper.start, self.version))
        self.environments = self._call(self._environments())  # set up once, not once per step (a user model)
        self._last_call: float | None = None
        self.steps: list[dict[str, Any]] = []  # what RUN_DIR/steps.jsonl holds

    # ---- what GRPOTrainer is given ----

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        check_sampling(self.config.episode.sampling, trainer.temperature)
        mode = "train" if trainer.model.training else "eval"
        n = trainer.num_generations if mode == "train" else trainer.num_generations_eval
        tasks = self.tasks.blocks(prompts, n)
        step = trainer.state.global_step
        pushed = self._push_weights(trainer, step)
        got: dict[str, Trajectory] = {}
        started = time.monotonic()
        step_dir = self._step_dir(mode, step)
        if self.version in self.keeper.versions:  # every episode of the step is sampled by this version
            write_versions(step_dir, {self.version: self.keeper.versions[self.version]})
        step_config = self.config.model_copy(update={"samples_per_task": n})
        executor = LocalExecutor(step_config, engine=self.engine, toolset=self.toolset, environments=self.environments)
        summary = self._call(
            run(
                step_config,
                step_dir,
                tasks=tasks,
                executor=executor,
                progress=False,
                on_recorded=lambda task, traj: got.__setitem__(traj.id, traj),
            )
        )
        rollout_s = time.monotonic() - started
        trajs = [got[episode_id(t.id, s)] for t in tasks for s in range(n)]  # TRL's order: prompt blocks
        filler = trainer.processing_class.eos_token_id
        batch = to_trl_rows(trajs, filler_id=filler if filler is not None else 0)
        metrics = episode_metrics(trajs, rollout_s)
        metrics.update(step=step, mode=mode, run_dir=summary["trajectories"], weight_update=pushed)
        if self._last_call is not None:
            metrics["step_s"] = round(started - self._last_call, 3)
        self._last_call = started
        if self.ratio_check != "off":
            metrics["trainer_ratio"] = trainer_ratio(trainer, batch)
        self._log(trainer, mode, metrics)
        if self.ratio_check != "off" and not metrics["trainer_ratio"]["ok"]:
            self._breach(step, step_dir, metrics["trainer_ratio"])
        batch.update(_reward_fields(trajs))
        return batch

    @property
    def reward_funcs(self) -> list[Callable[..., list[float]]]:
        """One TRL reward function per reward of the run config (agentroll scored the episode; TRL logs each as
        rewards/<name>/mean). Pass `reward_weights` alongside so TRL's total is the run's."""
        return [_component(name) for name in self.config.rewards]

    @property
    def reward_weights(self) -> list[float]:
        return list(self.config.rewards.values())

    def close(self) -> None:
        async def shut() -> None:
            await self.environments.aclose()
            if self._own_tools:
                await self.toolset.aclose()
            if self._own_engine:
                await self.engine.aclose()

        try:
            self._call(shut())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)

    def __enter__(self) -> TRLRollout:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the parts ----

    async def _environments(self) -> Environments:
        environments = Environments.of(self.config, self.engine)  # on this loop: its semaphore is bound to it
        await environments.start()
        return environments

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _push_weights(self, trainer: Any, step: int) -> dict[str, Any] | None:
        """The trainer's weights into the engine as policy `step`, once per step the trainer has advanced (and
        recorded: their fingerprint, and a kept copy)."""
        if step <= self.version:
            return None
        if not isinstance(self.engine, WeightUpdatable):
            raise ConfigError(f"engine {self.engine.name}: takes no weight updates, so it cannot follow the trainer")
        weights = trainer.accelerator.unwrap_model(trainer.model).state_dict()
        update = self._call(self.engine.update_weights(weights, version=step, mode="wait"))
        self.version = step
        kept = self.keeper.add(step, weights)
        return {
            **update.to_dict(),
            "fingerprint": kept.fingerprint,
            "kept": None if kept.weights is None else str(kept.weights),
        }

    def _breach(self, step: int, step_dir: Path, ratio: dict[str, Any]) -> None:
        message = (
            f"step {step}: TRL's own logprobs agree with the rollout's within 1e-3 on "
            f"{ratio['share_within_1e-3']:.4%} of {ratio['tokens']} trained tokens (needs {REQUIRED_SHARE:.1%}; "
            f"max |delta| {ratio['max_abs_delta']:.3g}, {ratio['trainer_precision']}): its importance ratios are off; "
            "`agentroll verify "
            f"{step_dir} --reference hf` says whether the engine or the trainer differs"
        )
        if self.ratio_check == "error":
            raise RatioBreach(message)
        warnings.warn(message, stacklevel=3)

    def _step_dir(self, mode: str, step: int) -> Path:
        base = self.run_dir / f"{mode}-step-{step:05d}"
        path, k = base, 1
        while path.exists():  # a second generation in one step (steps_per_generation): its own directory
            path, k = base.with_name(f"{base.name}-{k}"), k + 1
        return path

    def _log(self, trainer: Any, mode: str, metrics: dict[str, Any]) -> None:
        self.steps.append(metrics)
        with (self.run_dir / "steps.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(metrics) + "\n")
        logged = getattr(trainer, "_metrics", {}).get(mode)
        if logged is None:
            return
        ratio = metrics.get("trainer_ratio") or {}
        for key in ("well_formed_call_share", "tokens_per_s", "rollout_s"):
            logged[f"agentroll/{key}"].append(metrics[key])
        for key in ("min", "max"):
            if key in ratio.get("ratio", {}):
                logged[f"agentroll/trainer_ratio_{key}"].append(ratio["ratio"][key])


class TaskIndex:
    """TRL's prompts back to the run config's tasks (answer, tools): by their messages, else their question."""

    def __init__(self, tasks: Sequence[Task]):
        self.by_messages = {_key(t.messages): t for t in tasks}
        self.by_question = {_question(t.messages): t for t in tasks}

    def blocks(self, prompts: list[Any], n: int) -> list[Task]:
        """One task per block of `n` identical prompts (TRL's RepeatSampler order), IDs unique within the call."""
        if n < 1 or len(prompts) % n:
            raise ConfigError(f"TRL passed {len(prompts)} prompts: not blocks of num_generations={n}")
        tasks, seen = [], {}
        for start in range(0, len(prompts), n):
            block = prompts[start : start + n]
            if any(p != block[0] for p in block):
                raise ConfigError("TRL's prompts are not in blocks of num_generations identical prompts")
            task = self.find(block[0])
            seen[task.id] = seen.get(task.id, -1) + 1
            if seen[task.id]:  # the same prompt twice in one batch: two groups
                task = task.model_copy(update={"id": f"{task.id}#{seen[task.id]}"})
            tasks.append(task)
        return tasks

    def find(self, prompt: Any) -> Task:
        """The run config's task for a TRL prompt (its answer, tools and metadata); a prompt that is none of the
        run's tasks is an error (its episodes would be scored with no answer)."""
        messages = [Message(role="user", content=prompt)] if isinstance(prompt, str) else _messages(prompt)
        task = self.by_messages.get(_key(messages)) or self.by_question.get(_question(messages))
        if task is None:
            shown = (_question(messages) or "")[:80]
            raise ConfigError(
                f"TRL's prompt {shown!r} is not a task of the run config's dataset ({len(self.by_messages)} tasks): "
                "train on trl_dataset(config), the same tasks the rewards know the answers of"
            )
        return task


def episode_metrics(trajs: Sequence[Trajectory], rollout_s: float) -> dict[str, Any]:
    """Per step: reward (mean, spread), share of episodes whose first turn made a well-formed call, tokens/s."""
    rewards = [t.reward for t in trajs if t.reward is not None and t.segments]  # a failed reward: none
    components = {name for t in trajs for name in t.rewards}
    first_calls = [t.turns[0].tool_calls for t in trajs if t.turns]
    sampled = sum(len(turn.sampled_ids) for t in trajs for turn in t.turns)
    stops: dict[str, int] = {}
    for t in trajs:
        stops[t.stop_reason] = stops.get(t.stop_reason, 0) + 1
    return {
        "episodes": len(trajs),
        "reward_mean": statistics.fmean(rewards) if rewards else 0.0,
        "reward_std": statistics.pstdev(rewards) if rewards else 0.0,
        "rewards": {n: _mean([t.rewards.get(n) for t in trajs]) for n in sorted(components)},
        "reward_errors": sum(bool(t.metadata.get("reward_error")) for t in trajs),
        # episodes that never ran (trained on nothing, rewarded with nothing) and why
        "without_tokens": {t.id: no_tokens_cause(t) for t in trajs if not t.segments},
        "well_formed_call_share": sum(
            bool(c) and all(x.status == "ok" and not x.salvaged for x in c) for c in first_calls
        )
        / max(1, len(trajs)),
        "stop_reasons": stops,
        "sampled_tokens": sampled,
        "rollout_s": round(rollout_s, 3),
        "tokens_per_s": round(sampled / rollout_s, 1) if rollout_s > 0 else 0.0,
    }


def trainer_ratio(trainer: Any, batch: dict[str, list[list[Any]]]) -> dict[str, Any]:
    """TRL's own logprobs of the batch (its training forward: fused LM head, logits / temperature) against the
    rollout logprobs, on the trained tokens: ratio exp(trainer - rollout) summary and share within 1e-3."""
    import torch

    prompts, completions = batch["prompt_ids"], batch["completion_ids"]
    width_p, width_c = max(map(len, prompts)), max(map(len, completions))
    pad = trainer.processing_class.pad_token_id or 0
    ids = torch.full((len(prompts), width_p + width_c), pad, dtype=torch.long)
    attention = torch.zeros_like(ids)
    for row, (p, c) in enumerate(zip(prompts, completions, strict=True)):  # prompts left-padded, as TRL does
        ids[row, width_p - len(p) : width_p + len(c)] = torch.tensor(p + c)
        attention[row, width_p - len(p) : width_p + len(c)] = 1
    device, size = trainer.accelerator.device, trainer.args.per_device_train_batch_size
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids.to(device), attention.to(device), width_c, batch_size=size
        )
    deltas = [
        float(logps[row, i]) - lp
        for row, (mask, lps) in enumerate(zip(batch["env_mask"], batch["logprobs"], strict=True))
        for i, (m, lp) in enumerate(zip(mask, lps, strict=True))
        if m == 1
    ]
    within = sum(abs(d) <= TOLERANCE for d in deltas)
    share = within / len(deltas) if deltas else 1.0
    return {
        "tokens": len(deltas),
        "max_abs_delta": max((abs(d) for d in deltas), default=0.0),
        "ratio": ratio_summary(deltas),
        "share_within_1e-3": share,
        "ok": share >= REQUIRED_SHARE,
        "trainer_precision": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32",
    }


def _reward_fields(trajs: Sequence[Trajectory]) -> dict[str, list[Any]]:
    """Extra columns TRL hands its reward functions, per row: agentroll's rewards and the episode's record."""
    return {
        "agentroll_reward": [t.reward if t.segments else None for t in trajs],  # an episode that never ran: none
        "agentroll_rewards": [dict(t.rewards) for t in trajs],
        "episode_id": [t.id for t in trajs],
        "stop_reason": [t.stop_reason for t in trajs],
        "num_turns": [len(t.turns) for t in trajs],
        "tool_results": [[r.model_dump(mode="json") for r in t.tool_results] for t in trajs],
        "policy_version": [min((x.policy_version for x in t.turns if x.policy_version is not None), default=None)
                           for t in trajs],
    }  # fmt: skip


def _component(name: str) -> Callable[..., list[float | None]]:
    # None for every component of an episode whose reward failed (total None, metadata reward_error): TRL then
    # treats the row as unscorable (NaN in every function: out of its group's baseline, advantage 0), where one
    # None beside numbers would be summed as 0 (grpo_trainer.py, _generate_and_score_completions)
    def reward(
        completions: list[Any],
        agentroll_rewards: list[dict[str, float | None]],
        agentroll_reward: list[float | None],
        **_: Any,
    ) -> list[float | None]:
        return [
            None if total is None else r.get(name) for r, total in zip(agentroll_rewards, agentroll_reward, strict=True)
        ]

    reward.__name__ = name.replace(":", "_")
    return reward


def _mean(values: list[float | None]) -> float | None:
    scored = [v for v in values if v is not None]
    return statistics.fmean(scored) if scored else None


def _text(answer: Any) -> str | None:
    return None if answer is None else str(answer)


def _plain(m: Message) -> dict[str, Any]:
    return m.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def _messages(prompt: Sequence[dict[str, Any]]) -> list[Message]:
    """TRL's prompt (dicts that went through Arrow, which fills absent keys with None) as messages."""
    return [Message.model_validate({k: v for k, v in m.items() if v is not None}) for m in prompt]


def _key(messages: Sequence[Message]) -> str:
    return json.dumps([_plain(m) for m in messages], sort_keys=True)


def _question(messages: Sequence[Message]) -> str | None:
    return next((str(m.content) for m in reversed(messages) if m.role == "user"), None)
