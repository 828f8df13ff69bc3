"""`environment: python_session`: one sandboxed Python interpreter per episode (tools/sandbox.py's
PythonSession), whose variables and files persist across the episode's `python` calls and are gone after it.

The isolation is the `python` tool's (bubblewrap: no network, no host files; CPU, memory, process and file
limits; a uid of its own), held for the whole episode instead of one call; `max_concurrent` caps the
sandboxes alive at once. Teardown kills the interpreter and everything it started and deletes its working
directory, whatever the episode's stop reason.

    environment: python_session
    environment_options: {max_concurrent: 8, timeout_s: 10, cpu_s: 60, memory_mb: 512}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentroll.agent.environment import ToolEnvironment
from agentroll.agent.task import Task
from agentroll.tools import Toolset
from agentroll.tools.base import ToolOutput
from agentroll.tools.sandbox import CellResult, PythonSession, SandboxLimits
from agentroll.trajectory import Trajectory
from agentroll.types import Message, ToolSpec

_SCHEMA = {
    "type": "object",
    "properties": {"code": {"type": "string", "description": "Python 3 code; the last expression's value is printed."}},
    "required": ["code"],
    "additionalProperties": False,
}


class SessionTool:
    """`python` on one episode's session (Tool protocol)."""

    def __init__(self, session: PythonSession, name: str = "python"):
        self.session = session
        limits = session.limits
        self.spec = ToolSpec(
            name=name,
            description=(
                "Run Python 3 code in this conversation's own interpreter: variables, imports and files persist"
                f" between calls. No network; {limits.timeout_s:g} s per call, {limits.memory_mb} MB memory."
            ),
            input_schema=_SCHEMA,
        )
        self.timeout_s: float | None = limits.timeout_s + 10.0  # the session enforces its own deadline

    async def run(self, arguments: dict[str, Any]) -> ToolOutput:
        result = await self.session.run(arguments["code"])
        meta = {"ok": result.ok, "killed": result.killed, "truncated": result.truncated,
                "sandbox_s": round(result.duration_s, 4)}  # fmt: skip
        return ToolOutput(content=_report(result), metadata=meta, is_error=not result.ok)


def _report(r: CellResult) -> str:
    if r.killed:
        return f"killed: {r.killed}; the session's variables and files are gone"
    parts = [text.rstrip() for text in (r.stdout, r.stderr) if text]
    if r.truncated:
        parts.append("(output truncated)")
    return "\n".join(parts) or "(no output)"


@dataclass
class SessionEpisode(ToolEnvironment):
    session: PythonSession
    tools: Toolset | None = None
    messages: Sequence[Message] | None = None

    async def score(self, task: Task, traj: Trajectory) -> dict[str, float]:
        return {}

    async def teardown(self) -> None:
        await self.session.close()


class PythonSessionEnvironment:
    """A stateful Python sandbox per episode: variables and files persist across its calls, gone after it."""

    name = "python_session"
    reward_names: tuple[str, ...] = ()  # it scores nothing of its own

    def __init__(self, max_concurrent: int | None = 8, **limits: Any):
        self.max_concurrent = max_concurrent
        self.limits = SandboxLimits(**{"cpu_s": 60, **limits})

    async def setup(self, task: Task, episode_id: str) -> SessionEpisode:
        session = PythonSession(self.limits)
        await session.start()
        return SessionEpisode(session, tools=Toolset([SessionTool(session)]))
