"""verl's agent loop `agentroll`: agentroll's episode loop, renderers, parsers, tools and rewards inside verl.

A verl user switches with two config lines:

    actor_rollout_ref.rollout.agent.default_agent_loop=agentroll   (or a dataset column agent_name: agentroll)
    +agentroll.config=examples/gsm8k_calculator.yaml                (an agentroll run config: tools, renderer,
                                                                     episode budgets, rewards)
and imports this module where verl loads agent loops (`actor_rollout_ref.rollout.agent.agent_loop_config_path`
or an `import agentroll.integrations.verl` in the worker), which registers it with `@register("agentroll")`.

verl constructs the loop once per sample with its `server_manager` (token-in/token-out generation on verl's
own engines, weights synced by verl) and calls `run(sampling_params, **row)`. The loop wraps the server
manager as an agentroll Engine (`VerlEngine`), plays one episode of the row's `raw_prompt` with the run
config's tools, renderer and rewards, and returns verl's `AgentLoopOutput`: prompt_ids (the first prompt),
response_ids (everything after it, sampled and tool tokens), response_mask (1 = sampled), response_logprobs
(of the sampling distribution when verl's rollout runs with logprobs_mode processed_logprobs, its default),
num_turns, metrics, reward_score (the run config's weighted reward; None if it has none, so verl's reward
manager scores) and extra_fields (stop reason, reward components, tool results with their metadata,
turns, per-token policy versions where verl reports them). A multi-segment episode is refused as in TRL.

Tested with verl 0.9's own classes on CPU (tests/integrations/test_verl.py); a full verl training run
needs GPUs and has not been run here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopMetrics, AgentLoopOutput, register

from agentroll.agent import EpisodeConfig, Task, get_reward, score
from agentroll.engines.base import PROCESSED, RAW, UNKNOWN
from agentroll.errors import ConfigError
from agentroll.integrations.trl import one_segment_row
from agentroll.renderers import get_renderer
from agentroll.rollout.config import RunConfig, load_config
from agentroll.rollout.executor import build_toolset, play_episode
from agentroll.tools import Toolset
from agentroll.trajectory import Completion, Trajectory
from agentroll.types import SamplingParams

_VERL_MODES = {"processed_logprobs": PROCESSED, "raw_logprobs": RAW}
__all__ = ["AgentrollAgentLoop", "VerlEngine"]


class VerlEngine:
    """verl's server manager (`await generate(request_id, prompt_ids=..., sampling_params=...) -> TokenOutput`)
    as an agentroll Engine. verl keeps one request ID per episode for its sticky routing (prefix cache)."""

    name = "verl"

    def __init__(self, server_manager: Any, *, logprobs_mode: str = UNKNOWN, max_model_len: int | None = None):
        self.server_manager, self.logprobs_mode, self._max_model_len = server_manager, logprobs_mode, max_model_len

    async def generate(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> Completion:
        params = {
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "repetition_penalty": sampling.repetition_penalty,
            "max_tokens": sampling.max_tokens,
            "logprobs": True,
        }
        if sampling.seed is not None:
            params["seed"] = sampling.seed
        started = time.monotonic()
        out = await self.server_manager.generate(
            request_id=session_id or request_id or uuid.uuid4().hex, prompt_ids=list(prompt_ids), sampling_params=params
        )
        ids = list(out.token_ids)
        reason = "abort" if out.stop_reason == "aborted" else "length" if len(ids) >= sampling.max_tokens else "stop"
        c = Completion(ids, list(out.log_probs) if out.log_probs is not None else None, None, reason)
        c.prompt_tokens = len(prompt_ids)
        c.meta.update(engine=self.name, logprobs_mode=self.logprobs_mode, generate_s=time.monotonic() - started)
        return c

    async def health(self) -> bool:
        return True

    async def models(self) -> list[str]:
        return [self.name]

    @property
    def max_model_len(self) -> int | None:
        return self._max_model_len

    async def aclose(self) -> None:
        return None


_LOADED: dict[str, tuple[RunConfig, Toolset]] = {}  # per worker process: one config and started toolset per path


async def _run_config(path: str) -> tuple[RunConfig, Toolset]:
    """verl builds an agent loop per sample: the run config and its toolset (MCP sessions...) are built once."""
    if path not in _LOADED:
        config = load_config(Path(path))
        toolset = build_toolset(config)
        await toolset.start()
        _LOADED[path] = (config, toolset)
    return _LOADED[path]


@register("agentroll")
class AgentrollAgentLoop(AgentLoopBase):
    """See the module doc. The agentroll run config comes from verl's config key `agentroll.config`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        section = self.config.get("agentroll") or {}
        if not section.get("config"):
            raise ConfigError("verl agent loop 'agentroll': set +agentroll.config=PATH (an agentroll run config)")
        self.config_path = str(section["config"])
        self.response_length = int(self.rollout_config.response_length)
        mode = self.rollout_config.get("logprobs_mode", "processed_logprobs")
        self.logprobs_mode = _VERL_MODES.get(str(mode), UNKNOWN)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        config, toolset = await _run_config(self.config_path)
        task = row_task(kwargs, config)
        episode = episode_config(config.episode, sampling_params)
        engine = VerlEngine(self.server_manager, logprobs_mode=self.logprobs_mode)
        traj = await play_episode(task, 0, config.model_copy(update={"episode": episode}), engine,
                                  get_renderer(config.renderer), toolset)  # fmt: skip
        if config.rewards:
            score(traj, task, config.rewards, {name: get_reward(name) for name in config.rewards})
        return to_agent_loop_output(traj, self.response_length, scored=bool(config.rewards))


def row_task(row: dict[str, Any], config: RunConfig) -> Task:
    """A verl dataset row (RLHFDataset: raw_prompt, reward_model.ground_truth, extra_info) as an agentroll task."""
    messages = [dict(m) for m in row["raw_prompt"]]
    if config.system_prompt and not any(m.get("role") == "system" for m in messages):
        messages = [{"role": "system", "content": config.system_prompt}, *[m.model_dump() for m in config.examples],
                    *messages]  # fmt: skip
    reward_model = row.get("reward_model") or {}
    extra = row.get("extra_info") or {}
    task_id = str(extra.get("index", row.get("index", uuid.uuid4().hex)))
    return Task.model_validate(
        {"id": task_id, "messages": messages, "answer": reward_model.get("ground_truth"), "metadata": dict(extra)}
    )


def episode_config(episode: EpisodeConfig, sampling_params: dict[str, Any]) -> EpisodeConfig:
    """The run config's episode with verl's sampling (temperature, top_p, top_k: what verl's actor assumes)."""
    knobs = {k: sampling_params[k] for k in ("temperature", "top_p", "top_k") if sampling_params.get(k) is not None}
    return episode.model_copy(update={"sampling": episode.sampling.model_copy(update=knobs)})


def to_agent_loop_output(traj: Trajectory, response_length: int, *, scored: bool) -> AgentLoopOutput:
    """verl's shapes, tokens as recorded; a response longer than verl's response_length is cut (and said so)."""
    row = one_segment_row(traj)  # multi-segment episodes refused, as for TRL
    cut = len(row["response_ids"]) > response_length
    extra = {
        "stop_reason": traj.stop_reason,
        "agentroll_rewards": dict(traj.rewards),
        "tool_results": [r.model_dump(mode="json") for r in traj.tool_results],
        "num_tool_calls": sum(len(t.tool_calls) for t in traj.turns),
        "response_policy_versions": row["response_policy_versions"][:response_length],
        "response_constrained_mask": row["response_constrained_mask"][:response_length],
        "logprobs_mode": (traj.metadata.get("logprobs") or {}).get("mode", UNKNOWN),
        "episode_id": traj.id,
        "truncated_to_response_length": cut,
        "turn_scores": [],
        "tool_rewards": [],
    }
    return AgentLoopOutput(
        prompt_ids=row["prompt_ids"],
        response_ids=row["response_ids"][:response_length],
        response_mask=row["response_mask"][:response_length],
        response_logprobs=row["response_logprobs"][:response_length],
        reward_score=traj.reward if scored else None,
        num_turns=len(traj.messages),
        metrics=AgentLoopMetrics(
            generate_sequences=sum(t.generate_s for t in traj.turns), tool_calls=sum(t.tools_s for t in traj.turns)
        ),
        extra_fields=extra,
    )
