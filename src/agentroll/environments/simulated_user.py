"""`environment: simulated_user`: a model plays the user from the task's persona and goal, answering each
assistant reply until the goal is met (it says the end marker) or `max_user_turns` replies were written.

Who plays the user: by default the run's own engine (the policy model, with its own system prompt and
sampling) and the run's renderer. `user_engine: SPEC` (an engine spec, as the run's `engine`) gives the user
an engine of its own, built once per run (per Ray worker), started before the first episode and closed
after the last: a frozen user model beside a training policy, which keeps its weights when the policy's
are updated. `user_renderer: NAME` renders and parses the user's side (default: the run's renderer; required
with `user_engine`, whose model has its own tokenizer).

The user's words reach the policy as a user message: rendered context in the policy's trajectory (loss
mask 0), never sampled tokens of the policy. What the user cost is reported apart, in
`metadata["simulated_user"]` (turns, prompt and completion tokens, seconds, the renderer, and per reply
which engine, model and policy version played it), and its own tokens are not in the policy's turns or
sampled-token counts.

    dataset: {path: data/users.jsonl}          # rows: question (the user's first message), persona, goal
    environment: simulated_user
    environment_options: {max_user_turns: 2, temperature: 0.7, max_tokens: 64,
                          user_engine: "vllm://HOST:PORT", user_renderer: smollm2}   # both optional
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentroll.agent.task import Task
from agentroll.engines.base import Engine
from agentroll.engines.registry import make_engine
from agentroll.errors import ConfigError, EngineUnavailable
from agentroll.renderers import get_renderer
from agentroll.renderers.base import Renderer
from agentroll.tools import Toolset
from agentroll.trajectory import Completion, Trajectory
from agentroll.types import Message, SamplingParams, ToolResult

USER_PROMPT = (
    "You are playing a user who is talking to an AI assistant. Stay in character.\n"
    "Who you are: {persona}\nWhat you want: {goal}\n"
    "Write only your next message to the assistant, one or two short sentences. "
    "When you have what you wanted, write only {end}."
)
POLICY = "policy"  # metadata's name for the run's own engine playing the user


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
    played_by: list[dict[str, Any]] = field(default_factory=list)  # per reply: engine, model, policy version

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
        renderer, engine = f.user_renderer(), f.engine_for_users()
        prompt = renderer.render(self._as_user_sees_it(messages))
        started = time.monotonic()
        sampling = SamplingParams(max_tokens=f.max_tokens, temperature=f.temperature,
                                  stop_token_ids=tuple(renderer.stop_token_ids()))  # fmt: skip
        n = int(self.cost["turns"])
        completion = await engine.generate(
            prompt, sampling, request_id=f"{self.episode_id}-user-{n}", session_id=f"{self.episode_id}-user"
        )
        self.cost["turns"] += 1
        self.cost["prompt_tokens"] += len(prompt)
        self.cost["completion_tokens"] += len(completion.token_ids)
        self.cost["seconds"] += time.monotonic() - started
        self.played_by.append(f.who_played(completion))
        return (renderer.parse(completion.token_ids).message.content or "").strip()

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
        renderer = self.factory.renderer.name if self.factory.renderer is not None else None
        traj.metadata["simulated_user"] = {
            **{k: round(v, 4) for k, v in self.cost.items()}, "renderer": renderer, "played_by": self.played_by,
        }  # fmt: skip
        return {}

    async def teardown(self) -> None:
        return None


class SimulatedUser:
    """A model plays the user from the task's persona and goal; its tokens are context (mask 0), its cost apart."""

    name = "simulated_user"
    reward_names: tuple[str, ...] = ()  # it scores nothing of its own

    def __init__(
        self,
        *,
        user_engine: str | None = None,
        user_renderer: str | None = None,
        max_user_turns: int = 2,
        persona_field: str = "persona",
        goal_field: str = "goal",
        temperature: float = 0.7,
        max_tokens: int = 64,
        end_marker: str = "[DONE]",
        max_concurrent: int | None = None,
    ):
        if user_engine is not None and user_renderer is None:
            # the run's renderer speaks the policy's vocabulary: the user model would get token IDs of another
            raise ConfigError(
                f"simulated_user: user_engine {user_engine!r} needs user_renderer (the renderer of the user model's "
                "own tokenizer and template; the run's renderer is the policy's)"
            )
        self.user_engine = user_engine  # None: the run's own engine plays the user
        self.renderer: Renderer | None = get_renderer(user_renderer) if user_renderer else None  # None: the run's
        self.max_user_turns, self.persona_field, self.goal_field = max_user_turns, persona_field, goal_field
        self.temperature, self.max_tokens, self.end_marker = temperature, max_tokens, end_marker
        self.max_concurrent = max_concurrent
        self._policy: Engine | None = None
        self._own: Engine | None = None  # built from `user_engine` by start()
        self._own_model: str | None = None

    def use_engine(self, engine: Engine, renderer: Renderer) -> None:
        """The run's engine and renderer: the user's, unless `user_engine` / `user_renderer` name others."""
        self._policy = engine
        if self.renderer is None:
            self.renderer = renderer

    async def start(self) -> None:
        """Build and start the user's own engine (a no-op when the run's engine plays the user)."""
        if self.user_engine is None or self._own is not None:
            return
        self._own = make_engine(self.user_engine)
        if not await self._own.health():
            await self.aclose()
            raise EngineUnavailable(f"simulated_user: user_engine {self.user_engine!r} did not start or answer")
        if self._policy is not None and _weights_of(self._own) & _weights_of(self._policy):
            await self.aclose()
            raise ConfigError(
                f"simulated_user: user_engine {self.user_engine!r} samples from the policy engine's own weights (one "
                "server, or an embedded engine with the same settings, which share one model in a process), so it "
                "would follow the policy's weight updates. Leave user_engine out to play the user with the policy, "
                "or give it a model of its own (another server, or embedded settings that differ, e.g. "
                "embedded?max_model_len=1024)"
            )
        models = await self._own.models()
        self._own_model = models[0] if models else None

    async def aclose(self) -> None:
        own, self._own = self._own, None
        if own is not None:
            await own.aclose()

    def engine_for_users(self) -> Engine:
        if self.user_engine is not None:
            if self._own is None:
                raise ConfigError(f"simulated_user: user_engine {self.user_engine!r} is not started (the run starts "
                                  "it before its first episode)")  # fmt: skip
            return self._own
        if self._policy is None:
            raise ConfigError("simulated_user: no engine to play the user (the run hands it its own engine)")
        return self._policy

    def user_renderer(self) -> Renderer:
        if self.renderer is None:
            raise ConfigError("simulated_user: no renderer for the user (the run hands it its own renderer)")
        return self.renderer

    def who_played(self, completion: Completion) -> dict[str, Any]:
        """Which engine, model and weights version played one reply of the user."""
        versions = completion.policy_versions or []
        return {
            "engine": self.user_engine or POLICY,
            "model": completion.meta.get("model") or (self._own_model if self.user_engine else None),
            "policy_version": versions[0][1] if versions else None,
        }

    async def setup(self, task: Task, episode_id: str) -> UserEpisode:
        row: dict[str, Any] = task.metadata.get("row", {})
        missing = [k for k in (self.persona_field, self.goal_field) if k not in row]
        if missing:
            raise ConfigError(f"task {task.id}: simulated_user needs the row fields {missing}")
        return UserEpisode(self, str(row[self.persona_field]), str(row[self.goal_field]), episode_id)


def _weights_of(engine: Any) -> set[Any]:
    """Where an engine's weights live, as comparable keys: a server's URL, or an embedded engine's settings
    (embedded engines with equal settings share one model in a process); a pool's are its members'."""
    members = getattr(engine, "members", None)
    if members is not None:
        return set().union(*(_weights_of(m.engine) for m in members))
    for attr in ("settings", "base_url"):
        if (key := getattr(engine, attr, None)) is not None:
            return {key}
    return {id(engine)}
