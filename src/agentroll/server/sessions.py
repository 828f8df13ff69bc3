"""Sessions: the chat calls of one client stitched into one token-exact trajectory.

A call extends the session when its messages are the previous call's messages plus the answer the
server returned, followed by new messages (tool results, a user turn). Then the previous call's
exact token IDs are reused and only the bridge is rendered (mask 0). Anything else (the first call,
changed tools, an edited history) renders the conversation afresh as a new segment whose `reason`
says why. Each sampled token is appended with mask 1 and its logprob, as in the episode loop.

A call is planned without touching the session and committed only after the engine answered, so a
failed generation leaves the trajectory as it was.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentroll.agent.records import FORCED, append_tokens, turn_record
from agentroll.agent.toolchoice import GUIDED
from agentroll.errors import AgentrollError
from agentroll.trajectory import Completion, Segment, Trajectory, Turn
from agentroll.types import Message, ParsedMessage, ParseStatus, ToolSpec


@dataclass(slots=True)
class Plan:
    """What a call will append: a bridge to the current segment, or a fresh segment."""

    ids: list[int]
    new_segment: bool
    reason: str = ""


@dataclass(slots=True)
class Session:
    id: str
    traj: Trajectory
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tools: list[ToolSpec] = field(default_factory=list)
    sent: list[Message] = field(default_factory=list)  # the conversation as the client has seen it
    history: list[Message] = field(default_factory=list)  # the same, last answer as parsed from its tokens
    stopped: bool = True  # the last sampled turn ended with a stop token
    check_mask: list[int] = field(default_factory=list)  # current segment's mask, forced openers marked
    closed_drift: list[dict[str, Any]] = field(default_factory=list)  # prefix checks of finished segments

    @property
    def segment(self) -> Segment | None:
        return self.traj.segments[-1] if self.traj.segments else None

    def plan(self, renderer: Any, messages: list[Message], tools: list[ToolSpec]) -> Plan:
        """How this call's prompt continues the session (no state changes)."""
        why = self._mismatch(messages, tools)
        if why is None:
            bridge = renderer.bridge(self.history, messages[len(self.sent) :], tools, stopped=self.stopped)
            if not bridge.new_segment:
                return Plan(bridge.token_ids, new_segment=False)
            return Plan(bridge.token_ids, new_segment=True, reason=bridge.reason or "the template cannot extend")
        return Plan(renderer.render(messages, tools), new_segment=True, reason=why)

    def prompt(self, plan: Plan) -> list[int]:
        if plan.new_segment or self.segment is None:
            return list(plan.ids)
        return [*self.segment.token_ids, *plan.ids]

    def _mismatch(self, messages: list[Message], tools: list[ToolSpec]) -> str | None:
        if self.segment is None:
            return "initial"
        if tools != self.tools:
            return "tools changed"
        if len(messages) <= len(self.sent):
            return "no new messages after the previous answer"
        for i, (got, had) in enumerate(zip(messages, self.sent, strict=False)):
            if _key(got) != _key(had):
                return f"messages[{i}] differs from the previous call's conversation"
        return None

    def commit(
        self,
        renderer: Any,
        plan: Plan,
        messages: list[Message],
        tools: list[ToolSpec],
        forced: list[int],
        completion: Completion,
        parsed: ParsedMessage,
        returned: Message,
        started: float,
        constrained: bool = False,
    ) -> None:
        """Append the call's tokens: bridge or fresh prompt (mask 0), forced opener (0), sampled (1)."""
        if plan.new_segment:
            if self.segment is not None:
                self._close(renderer)
            self.traj.segments.append(Segment(reason=plan.reason))
            self.check_mask = []
        elif self.traj.turns:
            self.traj.turns[-1].bridge_len = len(plan.ids)
        self._append(plan.ids, 0)
        self._append(forced, FORCED)
        self._append(completion.token_ids, 1, completion.logprobs)
        self.traj.turns.append(self._turn(completion, parsed, len(forced), started))
        self.traj.turns[-1].constrained = GUIDED if constrained else None  # guided tool_choice (agent/toolchoice)
        self.tools, self.stopped = list(tools), parsed.stopped
        self.sent = [*messages, returned]
        self.history = [*messages, parsed.message]
        self.traj.messages = list(self.history)

    def _append(self, ids: list[int], mask: int, logprobs: list[float] | None = None) -> None:
        append_tokens(self.segment, self.check_mask, ids, mask, logprobs)

    def _turn(self, completion: Completion, parsed: ParsedMessage, forced: int, started: float) -> Turn:
        return turn_record(
            completion, parsed, index=len(self.traj.turns), segment=len(self.traj.segments) - 1,
            context_len=len(self.segment), forced=forced, started=started,
        )  # fmt: skip

    def _close(self, renderer: Any) -> None:
        drift = _check(renderer, self)
        if drift is not None:
            self.closed_drift.append(drift)

    def snapshot(self, renderer: Any) -> Trajectory:
        """The trajectory with the prefix check of every segment (the current one checked now)."""
        drift = list(self.closed_drift)
        if self.segment is not None and (current := _check(renderer, self)) is not None:
            drift.append(current)
        self.traj.metadata["drift"] = drift
        self.traj.stop_reason = _stop_reason(self.traj)
        self.traj.metadata["parse_errors"] = sum(
            c.status != ParseStatus.OK for t in self.traj.turns for c in t.tool_calls
        )
        return self.traj


def _stop_reason(traj: Trajectory) -> str:
    """As the episode loop names it: "length" (last turn truncated), "done" (answered without a call),
    or "open" (the last answer called tools whose results have not come back)."""
    if not traj.turns:
        return ""
    last = traj.turns[-1]
    if last.finish_reason == "length":
        return "length"
    return "open" if any(c.call is not None for c in last.tool_calls) else "done"


def _check(renderer: Any, s: Session) -> dict[str, Any] | None:
    checker = getattr(renderer, "check_prefix", None)
    if checker is None:
        s.traj.metadata["prefix_check"] = "unsupported"
        return None
    try:
        d = checker(s.history, s.tools, s.segment.token_ids, s.check_mask)
    except AgentrollError as e:  # a conversation the template cannot render: recorded, not raised
        return {"segment": len(s.traj.segments) - 1, "token_index": None, "why": f"prefix check failed: {e}"}
    if d is None:
        return None
    return {"segment": len(s.traj.segments) - 1, "token_index": d.token_index, "why": d.context}


def _key(m: Message) -> tuple[Any, ...]:
    """What must match for a message to count as the same turn (ids and reasoning do not matter)."""
    calls = tuple((c.name, json.dumps(c.arguments, sort_keys=True)) for c in m.tool_calls)
    return (m.role, (m.content or "").strip(), calls, m.name if m.role != "tool" else None)


class SessionStore:
    """Sessions by id, created on first use."""

    def __init__(self, renderer_name: str, max_sessions: int = 100_000):
        self._sessions: dict[str, Session] = {}
        self._renderer_name = renderer_name
        self.max_sessions = max_sessions

    def get_or_create(self, session_id: str) -> Session | None:
        """The session, created on first use; None when the store is full (the caller says 429)."""
        s = self._sessions.get(session_id)
        if s is None:
            if len(self._sessions) >= self.max_sessions:
                return None
            traj = Trajectory(id=session_id, metadata={"renderer": self._renderer_name, "source": "server"})
            s = self._sessions[session_id] = Session(id=session_id, traj=traj)
        return s

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def pop(self, session_id: str) -> Session | None:
        return self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def all(self) -> Sequence[Session]:
        return list(self._sessions.values())
