"""agentroll as verl 0.9's agent loop, with verl's own classes (no GPU): constructed the way verl's
AgentLoopWorker constructs an agent loop (its registry, hydra.utils.instantiate, its config wrappers), driven
end to end against a real engine (the embedded vLLM) behind verl's server-manager interface
(LLMServerClient.generate -> TokenOutput), and its AgentLoopOutput through as_dict(). The logprobs are checked
against transformers; the tool result is in the response with mask 0."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentroll.types import SamplingParams
from tests.conftest import needs_vllm

pytestmark = [
    pytest.mark.slow,
    needs_vllm,
    pytest.mark.skipif(importlib.util.find_spec("verl") is None, reason="verl not installed: scripts/install_verl.sh"),
]
EXAMPLE = Path(__file__).parents[2] / "examples" / "gsm8k_calculator.yaml"
QUESTION = "A box holds 7 rows of 6 eggs. How many eggs are in 5 boxes?"


def verl_server(engine: Any) -> Any:
    """verl's LLMServerClient with its generate served by a real engine (verl's own replicas are vLLM or SGLang
    servers on GPUs): prompt IDs in, TokenOutput (token IDs, logprobs, stop reason) out."""
    from verl.workers.rollout.llm_server import LLMServerClient
    from verl.workers.rollout.replica import TokenOutput

    class EngineServer(LLMServerClient):
        def __init__(self) -> None:
            super().__init__(config=None)
            self.requests: list[dict[str, Any]] = []

        async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict, **kw: Any) -> Any:
            self.requests.append({"request_id": request_id, **sampling_params})
            keys = ("temperature", "top_p", "top_k", "max_tokens", "seed")
            sampling = SamplingParams(**{k: sampling_params[k] for k in keys if k in sampling_params})
            c = await engine.generate(prompt_ids, sampling, session_id=request_id)
            return TokenOutput(token_ids=c.token_ids, log_probs=c.logprobs, stop_reason="completed")

    return EngineServer()


@pytest.fixture(scope="module")
def run_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GSM8K example with the first turn's call forced (the 135M model rarely calls on its own)."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["dataset"]["path"] = str(EXAMPLE.parent / raw["dataset"]["path"])
    raw["episode"].update(tool_choice="calculator", tool_choice_turns=1, max_turns=2)
    raw["episode"]["sampling"].update(max_tokens=64, stop=["</tool_call>"])
    path = tmp_path_factory.mktemp("verl") / "episode.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def verl_output(loop: Any, embedded: Any, model_dir: Path, run_config: Path) -> tuple[Any, Any]:
    import hydra
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap, _agent_loop_registry
    from verl.utils.dataset.rl_dataset import RLHFDataset

    import agentroll.integrations.verl  # noqa: F401  (registers "agentroll")

    config = OmegaConf.create({
        "actor_rollout_ref": {"rollout": {"prompt_length": 1024, "response_length": 256,
                                          "logprobs_mode": "processed_logprobs", "multi_turn": {}}},
        "data": {"apply_chat_template_kwargs": {}},
        "agentroll": {"config": str(run_config)},
    })  # fmt: skip
    server = verl_server(embedded)

    async def build_and_run() -> Any:  # on the engine's loop, as verl's worker runs its agent loops on its own
        loop_ = hydra.utils.instantiate(
            config=_agent_loop_registry["agentroll"], trainer_config=DictConfigWrap(config=config),
            server_manager=server, tokenizer=AutoTokenizer.from_pretrained(model_dir), processor=None,
            hf_model_type="llama", dataset_cls=RLHFDataset, data_config=DictConfigWrap(config.data),
            tools=ToolListWrap([]),
        )  # fmt: skip
        # what verl's AgentLoopWorker passes: its sampling dict and the dataset row's fields
        sampling = {"temperature": 0.7, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
        row = {"raw_prompt": [{"role": "user", "content": QUESTION}], "reward_model": {"ground_truth": "210"},
               "extra_info": {"index": 3}, "index": 3}  # fmt: skip
        return loop_, await loop_.run(sampling, **row)

    agent_loop, out = loop.run(build_and_run())
    return agent_loop, out, server


def test_verl_builds_the_agentroll_loop_from_its_registry(verl_output: tuple) -> None:
    from verl.experimental.agent_loop.agent_loop import AgentLoopOutput

    from agentroll.integrations.verl import AgentrollAgentLoop

    agent_loop, out, server = verl_output
    assert isinstance(agent_loop, AgentrollAgentLoop) and isinstance(out, AgentLoopOutput)
    assert server.requests and server.requests[0]["temperature"] == 0.7  # verl's sampling reached its server
    assert len({r["request_id"] for r in server.requests}) == 1  # one sticky ID per episode (prefix cache)


def test_the_tool_result_is_in_the_response_and_never_trained(verl_output: tuple, model_dir: Path) -> None:
    from transformers import AutoTokenizer

    _, out, _ = verl_output
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

    _, out, _ = verl_output
    ids = out.prompt_ids + out.response_ids
    positions = [len(out.prompt_ids) + i for i, m in enumerate(out.response_mask) if m == 1]
    convention = {"mode": "processed", "temperature": 0.7, "top_p": 1.0, "top_k": -1, "min_p": 0.0}
    scores = HFReference(model_dir).score(ids, positions, convention)
    rollout = [out.response_logprobs[p - len(out.prompt_ids)] for p in positions]
    assert max(abs(a - b) for a, b in zip(rollout, scores.logprobs, strict=True)) < 1e-3


def test_the_output_round_trips_through_verls_as_dict(verl_output: tuple) -> None:
    import torch

    _, out, _ = verl_output
    d = out.as_dict()
    assert d["prompts"].tolist() == out.prompt_ids and d["responses"].tolist() == out.response_ids
    assert d["response_mask"].tolist() == out.response_mask and d["rollout_log_probs"].dtype == torch.float32
    assert d["rm_scores"][-1].item() == out.reward_score and d["rm_scores"][:-1].abs().sum().item() == 0
    assert d["extra_fields"]["episode_id"] == "3:0" and d["num_turns"] == out.num_turns >= 4
