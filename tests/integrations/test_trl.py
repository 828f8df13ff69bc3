"""agentroll as TRL's rollout function: a real GRPOTrainer (trl 1.16) trains SmolLM2-135M on agentroll episodes
played by a real embedded vLLM engine, and TRL's own forward agrees with the recorded logprobs before each
optimizer step, also after the trainer's weights were pushed into the engine."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from agentroll.errors import ConfigError
from agentroll.rollout.config import load_config
from agentroll.rollout.store import read_records
from agentroll.trajectory import Segment, Trajectory
from agentroll.types import SamplingParams
from tests.conftest import HAVE_VLLM

EXAMPLE = Path(__file__).parents[2] / "examples" / "train_gsm8k_calculator.yaml"
needs_trl = pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason="trl not installed: pip install .[trl]")


def small_config() -> Any:
    episode = {"max_turns": 2, "sampling": {"max_tokens": 40, "temperature": 0.7, "seed": 0}}
    return load_config(EXAMPLE, limit=4, episode=episode, concurrency=8)


# ---- the shapes and the refusals (no engine) ----


def test_sampling_trl_cannot_recompute_is_refused_with_the_reason() -> None:
    from agentroll.integrations.trl import check_sampling

    check_sampling(SamplingParams(temperature=0.7), 0.7)
    with pytest.raises(ConfigError, match=r"temperature 1.0 \(the trainer's is 0.7\)"):
        check_sampling(SamplingParams(temperature=1.0), 0.7)
    with pytest.raises(ConfigError, match=r"top_p 0\.9"):
        check_sampling(SamplingParams(temperature=0.7, top_p=0.9), 0.7)
    with pytest.raises(ConfigError, match="json_schema"):
        check_sampling(SamplingParams(temperature=0.7, json_schema={"type": "object"}), 0.7)


def test_a_multi_segment_episode_is_refused_not_split() -> None:
    from agentroll.integrations.trl import to_trl_rows

    one = Segment(token_ids=[1, 2, 3, 4], loss_mask=[0, 1, 0, 1], logprobs=[None, -0.5, None, -0.25])
    rows = to_trl_rows([Trajectory(id="a:0", segments=[one])], filler_id=9)
    assert rows == {"prompt_ids": [[1]], "completion_ids": [[2, 3, 4]], "logprobs": [[-0.5, 0.0, -0.25]],
                    "env_mask": [[1, 0, 1]]}  # fmt: skip
    nothing = Segment(token_ids=[1, 2], loss_mask=[0, 0], logprobs=[None, None])
    assert to_trl_rows([Trajectory(id="b:0", segments=[nothing])], filler_id=9)["env_mask"] == [[0]]
    two = Trajectory(id="c:0", segments=[one, Segment(token_ids=[5, 6], loss_mask=[0, 1], logprobs=[None, -1.0])])
    with pytest.raises(ConfigError, match="c:0 has 2 segments"):
        to_trl_rows([two], filler_id=9)


def test_an_episode_that_never_ran_is_a_row_without_reward_and_says_why() -> None:
    """Its environment's setup failed: no tokens. TRL still gets one row per sample (its groups keep their shape),
    trained on nothing and rewarded with None (out of the group's baseline), and the cause is the real one."""
    from agentroll.integrations.trl import _reward_fields, episode_metrics, one_segment_row, to_trl_rows

    seg = Segment(token_ids=[1, 2, 3], loss_mask=[0, 1, 1], logprobs=[None, -0.5, -1.0])
    ran = Trajectory(id="t:0", segments=[seg], stop_reason="done", reward=1.0, rewards={"exact_match": 1.0})
    never = Trajectory(id="t:1", stop_reason="environment_error", reward=0.0, rewards={"exact_match": 0.0},
                       metadata={"error": "sandbox: setup failed: OSError: no bwrap"})  # fmt: skip
    rows = to_trl_rows([ran, never], filler_id=9)
    assert rows["completion_ids"] == [[2, 3], [9]] and rows["env_mask"] == [[1, 1], [0]]
    assert _reward_fields([ran, never])["agentroll_reward"] == [1.0, None]
    with pytest.raises(ConfigError, match=r"t:1 has no tokens: it stopped with 'environment_error' .*no bwrap"):
        one_segment_row(never)  # verl's shape has no filler: the real cause, not a renderer hint
    metrics = episode_metrics([ran, never], 1.0)
    assert metrics["reward_mean"] == 1.0 and "no bwrap" in metrics["without_tokens"]["t:1"]


@needs_trl
def test_a_prompt_outside_the_runs_dataset_is_an_error_not_a_task_without_answer() -> None:
    from agentroll.integrations.trl import TaskIndex
    from agentroll.rollout.dataset import load_tasks

    index = TaskIndex(load_tasks(small_config()))
    with pytest.raises(ConfigError, match="not a task of the run config's dataset"):
        index.find([{"role": "user", "content": "What is the capital of France?"}])


@needs_trl
def test_trl_prompts_after_arrow_find_their_tasks_in_blocks() -> None:
    from agentroll.integrations.trl import TaskIndex, trl_dataset
    from agentroll.rollout.dataset import load_tasks

    config = small_config()
    dataset = trl_dataset(config)  # through Arrow: absent message keys come back as None
    tasks = load_tasks(config)
    prompts = [row["prompt"] for row in dataset for _ in range(2)]
    got = TaskIndex(tasks).blocks(prompts + prompts[:2], 2)  # the same question twice in a batch: two groups
    assert [t.id for t in got] == [t.id for t in tasks] + [f"{tasks[0].id}#1"]
    assert got[0] == tasks[0] and dataset[0]["answer"] == str(tasks[0].answer)
    with pytest.raises(ConfigError, match="blocks"):
        TaskIndex(tasks).blocks(prompts[1:5], 2)


# ---- a real GRPOTrainer on the embedded engine ----


@pytest.fixture(scope="module")
def trained(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two GRPO steps (2 questions x 2 episodes): the batches TRL received, the adapter's per-step metrics.

    The step is large (lr 3e-3: Adam's first step moves every weight with a gradient by up to 3e-3, the norms and
    every layer by that much, the tied embedding's likely rows too), so that the ratio check after the push is a
    check that the engine took all of them, not that little changed."""
    if not HAVE_VLLM or importlib.util.find_spec("trl") is None:
        pytest.skip("needs vLLM and trl")
    from trl import GRPOConfig, GRPOTrainer

    from agentroll.integrations.trl import TRLRollout, trl_dataset

    out = tmp_path_factory.mktemp("trl") / "run"
    config = small_config()
    batches: list[dict[str, Any]] = []

    def longer(completions: list[Any], completion_ids: list[list[int]], **_: Any) -> list[float]:
        return [len(ids) / 40 for ids in completion_ids]  # varies within a group: the weights really move

    with TRLRollout(config, out) as rollout:

        def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, Any]:
            batch = rollout(prompts, trainer)
            batches.append(json.loads(json.dumps({k: batch[k] for k in ("prompt_ids", "completion_ids", "logprobs",
                                                                          "env_mask", "episode_id")})))  # fmt: skip
            return batch

        args = GRPOConfig(output_dir=str(out / "trainer"), max_steps=2, per_device_train_batch_size=4,
                          num_generations=2, learning_rate=3e-3, beta=0.0, temperature=0.7, bf16=False,
                          model_init_kwargs={"dtype": "float32"}, logging_steps=1, save_strategy="no",
                          report_to="none", use_cpu=True, seed=0)  # fmt: skip
        trainer = GRPOTrainer(model=str(model_dir), args=args, train_dataset=trl_dataset(config),
                              reward_funcs=[*rollout.reward_funcs, longer], rollout_func=rollout_func)  # fmt: skip
        trainer.train()
        steps = list(rollout.steps)
    return {"out": out, "batches": batches, "steps": steps, "log": trainer.state.log_history}


@pytest.mark.slow
def test_trl_trains_on_exactly_the_tokens_the_engine_sampled(trained: dict[str, Any]) -> None:
    for batch, step in zip(trained["batches"], trained["steps"], strict=True):
        on_disk = {r["id"]: r for r in read_records(Path(step["run_dir"]))}
        assert len(batch["prompt_ids"]) == 4 and set(batch["episode_id"]) == set(on_disk)
        for i, eid in enumerate(batch["episode_id"]):
            seg = on_disk[eid]["segments"][0]
            n = len(batch["prompt_ids"][i])
            assert batch["prompt_ids"][i] + batch["completion_ids"][i] == seg["token_ids"]
            assert batch["env_mask"][i] == seg["loss_mask"][n:]  # tool results and template tokens: 0
            for lp, m, recorded in zip(batch["logprobs"][i], batch["env_mask"][i], seg["logprobs"][n:], strict=True):
                assert lp == recorded if m == 1 else lp == 0.0


@pytest.mark.slow
def test_trls_own_logprobs_equal_the_rollouts_before_each_step_and_after_the_weight_push(trained: dict) -> None:
    first, second = trained["steps"]
    assert first["step"] == 0 and first["weight_update"] is None
    assert second["step"] == 1 and second["weight_update"]["version"] == 1  # the trainer's step-1 weights
    for step in (first, second):
        ratio = step["trainer_ratio"]
        assert ratio["trainer_precision"] == "fp32" and ratio["tokens"] > 20
        assert ratio["share_within_1e-3"] >= 0.999, ratio
    records = list(read_records(Path(second["run_dir"])))
    assert {t["policy_version"] for r in records for t in r["turns"]} == {1}  # sampled by the pushed policy
    assert any("agentroll/trainer_ratio_min" in entry for entry in trained["log"])  # in TRL's own logs


@pytest.mark.slow
def test_the_pushed_weights_are_not_the_old_ones(trained: dict[str, Any], model_dir: Path) -> None:
    """The ratio after the push is 1 because the engine follows the trainer, not because nothing changed:
    the original checkpoint no longer explains the step-1 samples (per transformers)."""
    from agentroll.engines.hf_reference import HFReference
    from agentroll.rollout.verify import verify_with_reference

    step0, step1 = ([Trajectory.from_dict(r) for r in read_records(Path(s["run_dir"]))] for s in trained["steps"])
    original = HFReference(model_dir)
    assert verify_with_reference(original, step0)["ok"]  # `agentroll verify --reference hf` on TRL's rows
    assert verify_with_reference(original, step1)["max_abs_delta"] > 1e-2


@pytest.mark.slow
def test_agentroll_verify_checks_a_step_against_the_weights_that_sampled_it(
    trained: dict[str, Any], model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`agentroll verify OUT/train-step-00001 --reference hf` with no flag passes: the step recorded its policy
    version's fingerprint and the adapter kept its weights. Without them it says "version mismatch" (never a
    logprob breach), and any folder holding those weights is found by fingerprint."""
    from agentroll.cli.main import main
    from agentroll.rollout.versions import read_versions

    step1 = Path(trained["steps"][1]["run_dir"]).parent
    (version,) = read_versions(step1).values()
    assert version.version == 1 and version.available()
    assert version.fingerprint == trained["steps"][1]["weight_update"]["fingerprint"]

    def verify(*extra: str) -> tuple[int, dict[str, Any], str]:
        rc = main(["verify", str(step1), "--reference", "hf", *extra])
        out, err = capsys.readouterr()
        return rc, json.loads(out), err

    rc, report, _ = verify()
    assert rc == 0 and report["tokens_checked"] > 20 and report["versions_checked"] == [1], report
    moved = version.weights.with_name("moved-away")
    version.weights.rename(moved)
    try:
        rc, report, err = verify("--model", str(model_dir))  # only the base weights
        assert rc == 1 and report["version_mismatch"] > 20 and report["tokens_checked"] == 0
        assert report["outside_tolerance"] == 0 and "version mismatch: sampled by policy version 1" in err
        assert report["models_given"] == {str(model_dir): None}  # the base is none of this step's versions
        rc, report, _ = verify("--model", str(model_dir), "--model", str(moved))  # the step's weights, elsewhere
        assert rc == 0 and report["weights"]["1"] == str(moved), report
    finally:
        moved.rename(version.weights)
