"""tool_choice required / named in an episode: what is forced before a turn, and under which constraint.

`opener`: the template's own call opener is appended after the prompt (mask 0), so the model can only go on
with a call. `guided`: the same opener, then the engine's guided decoding (a structural tag) holds the rest of
the turn to a call of an offered tool whose arguments satisfy its JSON Schema, and the template's closing
text. Only the first `tool_choice_turns` turns are held when that is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentroll.errors import ConfigError, RenderError
from agentroll.renderers.base import Renderer
from agentroll.types import SamplingParams, ToolSpec

from .task import EpisodeConfig

GUIDED = "tool_call"  # Turn.constrained for a turn sampled under a guided call


def call_opener(
    renderer: Renderer, tools: Sequence[ToolSpec], name: str | None, *, guided: bool
) -> tuple[list[int], dict[str, Any] | None]:
    """The template's call opener (up to the name for `required`, None; up to the arguments for a named tool)
    and, guided, the structural tag for the rest of the call. Raises AttributeError / RenderError where the
    renderer cannot."""
    if guided:
        call = renderer.guided_call(tools, name)  # type: ignore[attr-defined]
        return call.prefix, call.structural_tag
    return renderer.forced_call_prefix(tools, name), None  # type: ignore[attr-defined]


def forced_call(
    renderer: Renderer, tools: Sequence[ToolSpec], config: EpisodeConfig, turn: int, sampling: SamplingParams
) -> tuple[list[int], SamplingParams]:
    """(tokens to force after the prompt, the sampling for this turn)."""
    if config.tool_choice in ("auto", "none") or not tools:
        return [], sampling
    if config.tool_choice_turns is not None and turn >= config.tool_choice_turns:
        return [], sampling
    name = None if config.tool_choice == "required" else config.tool_choice
    try:
        prefix, tag = call_opener(renderer, tools, name, guided=config.tool_choice_enforcement == "guided")
    except (AttributeError, RenderError) as e:
        how = f"tool_choice={config.tool_choice!r} ({config.tool_choice_enforcement})"
        raise ConfigError(f"{how} is not supported by renderer {renderer.name}: {e}") from e
    return prefix, sampling if tag is None else sampling.model_copy(update={"structural_tag": tag})
