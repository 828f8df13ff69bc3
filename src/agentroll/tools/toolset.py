"""The executor the episode loop uses: `specs()`, `call()`, `call_many()`, `aclose()`.

A call never raises for a tool-side failure. An unknown tool, arguments that break the
schema, a tool that raises, hangs past its timeout, returns something unserialisable
or breaks its output schema, a dead MCP server: each becomes a ToolResult with
`is_error=True`, a reason the model can read, and `metadata["error_type"]` for rewards
and analysis, one of: unknown_tool, invalid_arguments, timeout, exception,
invalid_output, unavailable. Only cancellation of the caller propagates (and cancels
the tool).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Any

from agentroll.errors import ConfigError, ToolError, ToolTimeout, ToolUnavailable, ToolValidationError
from agentroll.tools.base import Tool, as_output
from agentroll.tools.mcp import MCPServer, MCPServerConfig
from agentroll.tools.validation import argument_errors, make_validator, output_errors
from agentroll.types import ToolCall, ToolResult, ToolSpec


class Toolset:
    """Named tools plus MCP servers, run under a default timeout and a global concurrency limit.

    Use as `async with Toolset([...], mcp=[...]) as tools:`; entering connects the MCP
    servers and lists their tools. Without MCP servers, entering is optional. A Toolset
    belongs to the event loop it first runs calls on (its semaphores and connections do).
    """

    def __init__(
        self,
        tools: Iterable[Tool] = (),
        *,
        mcp: Iterable[MCPServerConfig] = (),
        timeout_s: float = 30.0,
        max_concurrency: int = 64,
    ):
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency: must be >= 1, got {max_concurrency}")
        self.timeout_s = timeout_s
        self._tools: dict[str, Tool] = {}
        self._validators: dict[str, tuple[Any, Any]] = {}
        self._servers = [MCPServer(cfg) for cfg in mcp]
        self._global = asyncio.Semaphore(max_concurrency)
        self._started = not self._servers
        for t in tools:
            self.add(t)

    def add(self, t: Tool) -> None:
        """Register a tool; its schemas are checked now, so a broken schema fails at load, not mid-run."""
        name = t.spec.name
        if name in self._tools:
            raise ConfigError(f"tool {name!r} is defined twice")
        inp = make_validator(t.spec.input_schema, what=f"tool {name} input_schema")
        out = make_validator(t.spec.output_schema, what=f"tool {name} output_schema") if t.spec.output_schema else None
        self._tools[name] = t
        self._validators[name] = (inp, out)

    async def start(self) -> None:
        """Connect every MCP server and add its tools (idempotent)."""
        if self._started:
            return
        for server in self._servers:
            for t in await server.connect():
                self.add(t)
        self._started = True

    async def aclose(self) -> None:
        """Close MCP connections (their stdio servers exit). Safe to call twice."""
        for server in self._servers:
            await server.aclose()

    async def __aenter__(self) -> Toolset:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def specs(self) -> list[ToolSpec]:
        """What the model is shown, in registration order, schemas verbatim."""
        if not self._started:
            raise ConfigError("Toolset has MCP servers: `await toolset.start()` (or `async with`) before specs()")
        return [t.spec for t in self._tools.values()]

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    async def call_many(self, calls: Sequence[ToolCall], *, max_concurrency: int | None = None) -> list[ToolResult]:
        """Run one turn's calls concurrently; results in the calls' order.

        `max_concurrency` bounds this turn (an episode runs one turn at a time, so it is the
        episode's limit); the Toolset's global limit applies across all episodes on top.
        """
        limit = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        return list(await asyncio.gather(*(self.call(c, limit=limit) for c in calls)))

    async def call(self, call: ToolCall, *, limit: asyncio.Semaphore | None = None) -> ToolResult:
        """Run one call; every tool-side failure is an error result, never an exception."""
        start = time.perf_counter()
        t = self._tools.get(call.name)
        if t is None:
            available = ", ".join(self._tools) or "(none)"
            return _error(call, start, "unknown_tool", f"unknown tool {call.name!r}; available tools: {available}")
        in_validator, out_validator = self._validators[call.name]
        if problems := argument_errors(in_validator, call.arguments):
            return _error(
                call, start, "invalid_arguments", f"invalid arguments for {call.name}: " + "; ".join(problems)
            )
        # Episode slot first, then global: a call waiting on its episode never holds a global slot.
        async with limit or contextlib.nullcontext(), self._global:
            start = time.perf_counter()  # the duration is the tool's, not the queue's
            return await self._run(t, call, out_validator, start)

    async def _run(self, t: Tool, call: ToolCall, out_validator: Any, start: float) -> ToolResult:
        timeout = t.timeout_s if t.timeout_s is not None else self.timeout_s
        try:
            async with asyncio.timeout(timeout) as deadline:
                value = await t.run(dict(call.arguments))
        except TimeoutError:
            if deadline.expired():
                return _error(
                    call, start, "timeout", f"tool {call.name} timed out after {timeout:g} s and was cancelled"
                )
            return _error(call, start, "exception", f"tool {call.name} failed: TimeoutError")
        except ToolError as e:
            return _error(call, start, _error_type(e), f"tool {call.name} failed: {e}")
        except Exception as e:  # the tool's own bug is the episode's data, not the run's crash
            return _error(call, start, "exception", f"tool {call.name} failed: {type(e).__name__}: {e}")
        try:
            out = as_output(value)
        except ToolError as e:
            return _error(call, start, "invalid_output", f"tool {call.name} {e}")
        checked = out_validator is not None and not out.is_error and out.structured is not None
        if checked and (problems := output_errors(out_validator, out.structured)):
            message = f"tool {call.name} returned output that breaks its output schema: " + "; ".join(problems)
            return _error(call, start, "invalid_output", message)
        return ToolResult(
            tool_call_id=call.id,
            name=call.name,
            content=out.content,
            metadata=out.metadata,
            is_error=out.is_error,
            duration_s=time.perf_counter() - start,
        )


def _error_type(e: ToolError) -> str:
    if isinstance(e, ToolUnavailable):
        return "unavailable"
    if isinstance(e, ToolTimeout):
        return "timeout"
    return "invalid_arguments" if isinstance(e, ToolValidationError) else "exception"


def _error(call: ToolCall, start: float, error_type: str, message: str) -> ToolResult:
    return ToolResult(
        tool_call_id=call.id,
        name=call.name,
        content=message,
        metadata={"error_type": error_type},
        is_error=True,
        duration_s=time.perf_counter() - start,
    )
