"""Tasks and episode configuration (pydantic at the edge: configs and datasets are user input)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentroll.types import Enforcement, Message, ParseMode, SamplingParams

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Task(BaseModel):
    """One dataset row: the opening messages, which tools it may use, and what a reward needs."""

    model_config = _STRICT

    id: str
    messages: tuple[Message, ...]
    tools: tuple[str, ...] | None = None  # tool names this task may use; None: every tool of the toolset
    answer: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


ToolChoice = Literal["auto", "required", "none"] | str  # or the name of one tool


class EpisodeConfig(BaseModel):
    """Budgets and policies of one episode. Every limit ends the episode with a recorded stop reason."""

    model_config = _STRICT

    sampling: SamplingParams = SamplingParams(max_tokens=256)
    max_turns: int = Field(8, ge=1)
    max_episode_tokens: int = Field(8192, ge=1)  # all tokens of the final segment, prompt included
    max_parse_errors: int = Field(2, ge=0)  # malformed tool calls tolerated before stopping
    # strict: only well-formed calls run (the RL default: a salvaged call would reward a broken format);
    # lenient: also the calls vLLM's parsers accept after a repair, each marked `salvaged` in the turn record.
    tool_parse: ParseMode = "strict"
    on_tool_error: Literal["continue", "stop"] = "continue"
    timeout_s: float | None = Field(None, gt=0)  # wall clock for the whole episode
    tool_choice: ToolChoice = "auto"
    # The turns `tool_choice` required/named holds for (None: every turn); after them the model chooses (auto),
    # e.g. 1: the first turn must call a tool, then the model may answer.
    tool_choice_turns: int | None = Field(None, ge=1)
    # How tool_choice required/named is kept. opener: the template's call opener is forced, the model writes
    # the rest (it may write a malformed call). guided: the opener, then the engine's guided decoding holds
    # the call to an offered tool with arguments valid under its schema and the template's closing text;
    # those tokens are marked `constrained` (their logprobs are of the constrained distribution).
    tool_choice_enforcement: Enforcement = "opener"
    parallel_tool_calls: bool = True
    # What the model is told when its call could not be used; {error} is the parser's reason.
    malformed_call_message: str = "Error: your tool call could not be parsed ({error}). Call the tool again."
    check_prefix: Literal["end", "every_turn", "off"] = "end"
    # A generation that a weight update's pause (mode=abort) cut off: sample the turn again on the new
    # weights (its cut-off tokens are discarded and counted), or play the whole episode again from the start.
    on_weight_update_abort: Literal["rerun_turn", "restart_episode"] = "rerun_turn"
