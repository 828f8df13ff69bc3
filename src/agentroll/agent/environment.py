"""Environments decide what follows a model turn: tool results, a simulated user, or the end.

The default answers a turn's tool calls with their results and ends the episode when the model
answers without calling a tool. A multi-step environment or a simulated user overrides `respond`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from agentroll.agent.task import Task
from agentroll.types import Message, ToolResult


@runtime_checkable
class Environment(Protocol):
    async def respond(
        self, task: Task, messages: Sequence[Message], results: Sequence[ToolResult]
    ) -> list[Message] | None:
        """Messages to append after the model's last turn (`messages[-1]`); None or [] ends the episode."""
        ...


class ToolEnvironment:
    """Tool results go back to the model; a turn without tool calls ends the episode."""

    async def respond(
        self, task: Task, messages: Sequence[Message], results: Sequence[ToolResult]
    ) -> list[Message] | None:
        return [r.to_message() for r in results] or None
