"""`environment: simulated_user`: a model plays the user from the task's persona and goal, answering each
assistant reply until the goal is met (it says the end marker) or `max_user_turns` replies were written.

The user model is the run's own engine (the policy model, with its own system prompt and sampling) and a
renderer of its own. Its words reach the policy as a user message: rendered context in the policy's
trajectory (loss mask 0), never sampled tokens of the policy. What the user cost is reported apart, in
`metadata["simulated_user"]` (turns, prompt and completion tokens, seconds), and its own tokens are not in
the policy's turns or sampled-token counts.

    dataset: {path: data/users.jsonl}          # rows: question (the user's first message), persona, goal
    environment: simulated_user
    environment_options: {max_user_turns: 2, renderer: smollm2, temperature: 0.7, max_tokens: 64}
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentroll.agent.task import Task
from agentroll.engines.base import Engine
from agentroll.errors import ConfigError
from agentroll.renderers import get_renderer
from agentroll.renderers.base import Renderer
from agentroll.tools import Toolset
from agentroll.trajectory import Trajectory
from agentroll.types import Message, SamplingParams, ToolResult

USER_PROMPT = (
    "You are playing a user who is talking to an AI assistant. Stay in character.\n"
    "Who you are: {persona}\nWhat you want: {goal}\n"
    "Write only your next message to the assistant, one or two short sentences. "
    "When you have what you wanted, write only {end}."
)


@dataclass
class UserEpisode:
    """One episode's user: its persona and goal, and what playing it cost."""

    factory: SimulatedUser
    persona: str
    goal: str
    episode_id: str
    tools: Toolset | None = None  # the run's tools
    messages: Sequence[Message] | None = None
    cost: dict[str, float] = field(default_factory=lambda: {"turns": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                                             "seconds": 0.0})  # fmt: skip

    async def respond(
        self, task: Task, messages: Sequence[Message], results: Sequence[ToolResult]
    ) -> list[Message] | None:
        if results:  # the assistant is still using its tools
            return [r.to_message() for r in results]
        if self.cost["turns"] >= self.factory.max_user_turns:
            return None
        reply = await self._user_says(messages)
        if not reply or self.factory.end_marker in reply:
            return None  # the user is satisfied (or has nothing to say)
        return [Message(role="user", content=reply)]

    async def _user_says(self, messages: Sequence[Message]) -> str:
        f = self.factory
        prompt = f.renderer.render(self._as_user_sees_it(messages))
        started = time.monotonic()
        sampling = SamplingParams(max_tokens=f.max_tokens, temperature=f.temperature,
                                  stop_token_ids=tuple(f.renderer.stop_token_ids()))  # fmt: skip
        n = int(self.cost["turns"])
        completion = await f.engine_for_users().generate(
            prompt, sampling, request_id=f"{self.episode_id}-user-{n}", session_id=f"{self.episode_id}-user"
        )
        self.cost["turns"] += 1
        self.cost["prompt_tokens"] += len(prompt)
        self.cost["completion_tokens"] += len(completion.token_ids)
        self.cost["seconds"] += time.monotonic() - started
        return (f.renderer.parse(completion.token_ids).message.content or "").strip()

    def _as_user_sees_it(self, messages: Sequence[Message]) -> list[Message]:
        """The conversation from the user's side: its own messages are the assistant's, the assistant's
        replies (their text) are the user's; system prompts, tool calls and tool results are not seen."""
        f = self.factory
        seen = [Message(role="system", content=USER_PROMPT.format(persona=self.persona, goal=self.goal,
                                                                   end=f.end_marker))]  # fmt: skip
        for m in messages:
            if m.role == "user":
                seen.append(Message(role="assistant", content=m.content))
            elif m.role == "assistant" and m.content:
                seen.append(Message(role="user", content=m.content))
        return seen

    async def score(self, task: Task, traj: Trajectory) -> dict[str, float]:
        traj.metadata["simulated_user"] = {k: round(v, 4) for k, v in self.cost.items()}
        return {}

    async def teardown(self) -> None:
        return None


class SimulatedUser:
    """A model plays the user from the task's persona and goal; its tokens are context (mask 0), its cost apart."""

    name = "simulated_user"

    def __init__(
        self,
        *,
        renderer: str = "smollm2",
        max_user_turns: int = 2,
        persona_field: str = "persona",
        goal_field: str = "goal",
        temperature: float = 0.7,
        max_tokens: int = 64,
        end_marker: str = "[DONE]",
        max_concurrent: int | None = None,
    ):
        self.renderer: Renderer = get_renderer(renderer)
        self.max_user_turns, self.persona_field, self.goal_field = max_user_turns, persona_field, goal_field
        self.temperature, self.max_tokens, self.end_marker = temperature, max_tokens, end_marker
        self.max_concurrent = max_concurrent
        self._engine: Engine | None = None

    def use_engine(self, engine: Engine) -> None:
        self._engine = engine

    def engine_for_users(self) -> Engine:
        if self._engine is None:
            raise ConfigError("simulated_user: no engine to play the user (the run hands it its own engine)")
        return self._engine

    async def setup(self, task: Task, episode_id: str) -> UserEpisode:
        row: dict[str, Any] = task.metadata.get("row", {})
        missing = [k for k in (self.persona_field, self.goal_field) if k not in row]
        if missing:
            raise ConfigError(f"task {task.id}: simulated_user needs the row fields {missing}")
        return UserEpisode(self, str(row[self.persona_field]), str(row[self.goal_field]), episode_id)
