"""verl's agent loop `agentroll`: agentroll's episode loop, renderers, parsers, tools and rewards inside verl.

A verl user switches with two config lines:

    actor_rollout_ref.rollout.agent.default_agent_loop=agentroll   (or a dataset column agent_name: agentroll)
    +agentroll.config=examples/gsm8k_calculator.yaml                (an agentroll run config: tools, renderer,
                                                                     episode budgets, rewards)
and imports this module where verl loads agent loops (`actor_rollout_ref.rollout.agent.agent_loop_config_path`
or an `import agentroll.integrations.verl` in the worker), which registers it with verl's `register("agentroll")`.

verl constructs the loop once per sample with its `server_manager` (token-in/token-out generation on verl's
own engines, weights synced by verl) and calls `run(sampling_params, **row)`. The loop wraps the server
manager as an agentroll Engine (`VerlEngine`), plays one episode of the row's `raw_prompt` with the run
config's tools, renderer and rewards, and returns verl's `AgentLoopOutput`: prompt_ids (the first prompt),
response_ids (everything after it, sampled and tool tokens), response_mask (1 = sampled), response_logprobs
(of the sampling distribution when verl's rollout runs with logprobs_mode processed_logprobs, its default),
num_turns, metrics, reward_score (the run config's weighted reward; None if it has none, so verl's reward
manager scores) and extra_fields (stop reason, reward components, tool results with their metadata,
turns, episode ID, sample index and seed, per-token policy versions where verl reports them). A
multi-segment episode is refused as in TRL.

verl repeats each row rollout.n times for a GRPO group: every sample is its own episode, with its own ID and
seed (`sample_identity`). Every sampling setting of the run config reaches verl's server (`verl_sampling`) or
is refused with a ConfigError naming it; an episode stops with `context_overflow` before its context would
pass verl's max_model_len.

Tested with verl 0.9's own classes on CPU (tests/integrations/test_verl.py); a full verl training run
needs GPUs and has not been run here.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopMetrics, AgentLoopOutput, register

from agentroll.agent import EpisodeConfig, Task, get_reward, score
from agentroll.engines.base import PROCESSED, RAW, UNKNOWN, check_context, normalize_finish_reason
from agentroll.errors import ConfigError, EngineError, RewardError
from agentroll.integrations.trl import one_segment_row
from agentroll.renderers import get_renderer
from agentroll.rollout.config import RunConfig, load_config
from agentroll.rollout.executor import build_toolset, play_episode, seeded
from agentroll.tools import Toolset
from agentroll.trajectory import Completion, Trajectory
from agentroll.types import SamplingParams

_VERL_MODES = {"processed_logprobs": PROCESSED, "raw_logprobs": RAW}
# Settings agentroll hands only to verl's vLLM replica: its SGLang server passes the dict to SGLang's own
# SamplingParams, whose names for these differ by version. Refused on other backends, never dropped.
_VLLM_ONLY = ("seed", "json_schema", "structural_tag")
_SAMPLES = itertools.count()  # samples this process numbers itself (a worker driven without verl's numbering)
__all__ = ["AgentrollAgentLoop", "VerlEngine", "sample_identity", "verl_sampling"]


def verl_sampling(s: SamplingParams, backend: str = "vllm") -> dict[str, Any]:
    """`s` in the form verl's server manager takes: its vLLM replica passes the dict to `vllm.SamplingParams`
    as is (after translating max_tokens and logprobs). Every setting is forwarded or refused (ConfigError)."""
    if s.logprobs:
        raise ConfigError(
            f"sampling.logprobs={s.logprobs} (top-k logprobs) cannot reach verl: its TokenOutput carries the sampled "
            "token's logprob only; set logprobs: 0"
        )
    if backend != "vllm" and (named := [k for k in _VLLM_ONLY if getattr(s, k) is not None]):
        raise ConfigError(
            f"sampling {', '.join(named)}: agentroll forwards these to verl's vLLM replica only, and this verl "
            f"rollout is {backend!r}; remove them from the run config's episode"
        )
    params: dict[str, Any] = {
        "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k, "min_p": s.min_p,
        "repetition_penalty": s.repetition_penalty, "max_tokens": s.max_tokens, "ignore_eos": s.ignore_eos,
        "stop": list(s.stop), "stop_token_ids": list(s.stop_token_ids), "logprobs": True,
    }  # fmt: skip
    if s.seed is not None:
        params["seed"] = s.seed
    if s.json_schema is not None or s.structural_tag is not None:
        params["structured_outputs"] = _structured_outputs(s)
    return params


def _structured_outputs(s: SamplingParams) -> Any:
    """vLLM's guided decoding for verl's replica (the object reaches it through Ray as is)."""
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError as e:
        raise ConfigError(
            "sampling json_schema / structural_tag (guided decoding) need vLLM's StructuredOutputsParams in verl's "
            f"agent-loop worker: {e}"
        ) from e
    if s.structural_tag is not None:
        return StructuredOutputsParams(structural_tag=json.dumps(s.structural_tag))
    return StructuredOutputsParams(json=s.json_schema)


class VerlEngine:
    """verl's server manager (`await generate(request_id, prompt_ids=..., sampling_params=...) -> TokenOutput`)
    as an agentroll Engine. verl keeps one request ID per episode for its sticky routing (prefix cache).

    Sampling goes through `verl_sampling` (all of it, or a ConfigError). A prompt that cannot fit
    `max_model_len` with its max_tokens is never sent (ContextOverflow: the episode's context stop). verl reports
    "completed" for a stop and for the max_tokens limit alike, so the finish reason is read from the tokens: a
    turn shorter than max_tokens, or ending on a stop token or stop string, stopped; else it hit the limit."""

    name = "verl"

    def __init__(
        self,
        server_manager: Any,
        *,
        logprobs_mode: str = UNKNOWN,
        max_model_len: int | None = None,
        backend: str = "vllm",
        tokenizer: Any = None,
        priority: int = 0,
    ):
        self.server_manager, self.logprobs_mode, self._max_model_len = server_manager, logprobs_mode, max_model_len
        self.backend, self.tokenizer, self.priority = backend, tokenizer, priority

    async def generate(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> Completion:
        check_context(len(prompt_ids), sampling, self._max_model_len)
        params, started = verl_sampling(sampling, self.backend), time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                out = await self.server_manager.generate(
                    request_id=session_id or request_id or uuid.uuid4().hex, prompt_ids=list(prompt_ids),
                    sampling_params=params, priority=self.priority,
                )  # fmt: skip
        except TimeoutError:
            raise
        except Exception as e:  # a Ray or server failure (verl's replica raises ValueError for what it refuses)
            raise EngineError(f"verl server: {type(e).__name__}: {e}") from e
        ids = list(out.token_ids)
        c = Completion(ids, list(out.log_probs) if out.log_probs is not None else None, None, "stop")
        c.finish_reason = self._finish_reason(out.stop_reason, ids, sampling)
        if c.finish_reason == "abort":
            c.meta["abort_message"] = f"verl stop_reason {out.stop_reason!r}"
        c.prompt_tokens = len(prompt_ids)
        c.policy_versions = _policy_versions(out.extra_fields or {})
        c.meta.update(engine=self.name, logprobs_mode=self.logprobs_mode, generate_s=time.monotonic() - started)
        return c

    def _finish_reason(self, reported: str | None, ids: list[int], s: SamplingParams) -> str:
        if reported not in (None, "completed", "length", "stop"):  # "aborted" (a weight sync, a drain), "error"
            return normalize_finish_reason(reported)
        if len(ids) < s.max_tokens or self._ended_on_stop(ids, s):
            return "stop"
        return "length"

    def _ended_on_stop(self, ids: list[int], s: SamplingParams) -> bool:
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if ids and (ids[-1] in s.stop_token_ids or (ids[-1] == eos and not s.ignore_eos)):
            return True
        # vLLM ends a request at the token that completes a stop string, so one anywhere in the text ended it
        return bool(s.stop and self.tokenizer is not None and any(x in self.tokenizer.decode(ids) for x in s.stop))

    async def health(self) -> bool:
        return True

    async def models(self) -> list[str]:
        return [self.name]

    @property
    def max_model_len(self) -> int | None:
        return self._max_model_len

    async def aclose(self) -> None:
        return None


def _policy_versions(extra: dict[str, Any]) -> list[tuple[int, int]] | None:
    """verl's weight version (`global_steps`) for every token; None when it does not say, or says the
    generation spanned several (its fully async client resumes an aborted request on newer weights)."""
    steps = extra.get("global_steps")
    if steps is None or extra.get("min_global_steps", steps) != extra.get("max_global_steps", steps):
        return None
    return [(0, int(steps))]


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
        self.backend = str(self.rollout_config.get("name") or "vllm")
        self.max_model_len = context_limit(self.rollout_config)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        config, toolset = await _run_config(self.config_path)
        task = row_task(kwargs, config)
        sample, eid = sample_identity(task.id, kwargs)
        episode = episode_config(config.episode, sampling_params)
        verl_sampling(episode.sampling, self.backend)  # a setting verl cannot take is refused before the episode
        engine = VerlEngine(
            self.server_manager, logprobs_mode=self.logprobs_mode, max_model_len=self.max_model_len,
            backend=self.backend, tokenizer=self.tokenizer, priority=int(kwargs.get("priority") or 0),
        )  # fmt: skip
        traj = await play_episode(task, sample, config.model_copy(update={"episode": episode}), engine,
                                  get_renderer(config.renderer), toolset, eid=eid)  # fmt: skip
        traj.metadata["seed"] = seeded(episode, eid).sampling.seed  # the seed play_episode gave it (None: unseeded)
        if config.rewards:
            score(traj, task, config.rewards, {name: get_reward(name) for name in config.rewards})
        return to_agent_loop_output(traj, self.response_length, scored=bool(config.rewards))


def context_limit(rollout: Any) -> int:
    """The longest context an episode may reach: verl's rollout.max_model_len, else prompt_length +
    response_length (the budget verl's servers give a request that names no max_tokens)."""
    return int(rollout.get("max_model_len") or int(rollout.prompt_length) + int(rollout.response_length))


def sample_identity(task_id: str, row: dict[str, Any]) -> tuple[int, str]:
    """(sample index, episode ID) of one of verl's samples. verl repeats each row rollout.n times, all with the
    row's `uid` (the GRPO group, fresh every step), and its AgentLoopManager numbers the samples of a step's
    batch (`priority`, which verl's own loops name their requests by). A worker driven without them: this
    process numbers its samples and the group is a fresh ID. The ID seeds the episode (executor.seeded), so
    each sample of a group, in every step, has its own seed."""
    priority = row.get("priority")
    sample = int(priority) if priority is not None else next(_SAMPLES)
    return sample, f"{task_id}:{sample}:{row.get('uid') or uuid.uuid4().hex}"


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
    """verl's shapes, tokens as recorded; a response longer than verl's response_length is cut (and said so).

    An episode whose reward could not be computed is an error: verl has no way to leave one sample out of its
    GRPO group, and any stand-in (0, or None, which verl's own reward manager would fill) would be trained on."""
    if scored and traj.reward is None:
        raise RewardError(
            f"episode {traj.id}: its reward could not be computed ({traj.metadata.get('reward_error')}); verl would "
            "train on a stand-in for it: fix the scorer"
        )
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
        "sample_index": traj.sample_index,
        "seed": traj.metadata.get("seed"),
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
