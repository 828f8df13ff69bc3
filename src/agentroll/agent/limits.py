"""Stop reasons and the budget check the episode loop calls before every turn."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from agentroll.agent.task import EpisodeConfig


class Stop:
    """Every way an episode ends. Each is recorded on the trajectory; none is a crash."""

    DONE = "done"  # the model answered without calling a tool
    MAX_TURNS = "max_turns"
    MAX_EPISODE_TOKENS = "max_episode_tokens"
    CONTEXT_OVERFLOW = "context_overflow"  # prompt + max_tokens > the engine's context: never sent
    LENGTH = "length"  # the turn hit max_tokens
    PARSE_ERRORS = "parse_error_budget"
    TOOL_FAILURE = "tool_failure"
    ENGINE_ERROR = "engine_error"  # the engine failed, or ended a generation itself (finish reason "abort")
    RENDER_ERROR = "render_error"  # the template could not render what follows a turn
    ENVIRONMENT_ERROR = "environment_error"  # the environment's respond() raised
    TIMEOUT = "timeout"


@dataclass(slots=True)
class Budget:
    """What an episode has spent so far."""

    started: float = field(default_factory=time.monotonic)
    turns: int = 0
    parse_errors: int = 0


def check(budget: Budget, config: EpisodeConfig, context_tokens: int, max_model_len: int | None) -> str | None:
    """The stop reason that applies before the next generate call, or None to go on."""
    if budget.turns >= config.max_turns:
        return Stop.MAX_TURNS
    if budget.parse_errors > config.max_parse_errors:
        return Stop.PARSE_ERRORS
    if context_tokens >= config.max_episode_tokens:
        return Stop.MAX_EPISODE_TOKENS
    if max_model_len is not None and context_tokens + config.sampling.max_tokens > max_model_len:
        return Stop.CONTEXT_OVERFLOW
    if config.timeout_s is not None and time.monotonic() - budget.started > config.timeout_s:
        return Stop.TIMEOUT
    return None
