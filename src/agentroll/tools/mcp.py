"""MCP servers as tools, over stdio or streamable HTTP, with the official `mcp` SDK (2.x client).

Each server's tools keep their schemas exactly as listed (input and output). A call's
result maps to ToolOutput: text blocks are the content; `structuredContent` and the
result's `_meta` go to metadata (`structured`, `mcp_meta`); `isError` is kept.

The SDK's client is an anyio context manager that must be entered and left in one
task, so each connection lives in a small background task that holds it open until
closed. When the connection dies (a stdio server crashed, an HTTP server restarted),
the next call reconnects; a call that met the dead connection is resent once on the
new one (`resend_on_reconnect`, at-least-once: turn it off for tools with side effects).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentroll.errors import ToolError, ToolUnavailable
from agentroll.tools.base import ToolOutput
from agentroll.types import ToolSpec

_MAX_PAGES = 100  # a server whose tools/list never ends must not hang the start

# The SDK is imported where it is used: it takes a second or more to import, and
# a toolset without MCP servers (or `agentroll tools list`) should not pay for it.
if TYPE_CHECKING:
    import mcp_types
    from mcp import Client


class MCPServerConfig(BaseModel):
    """One MCP server: a stdio `command` (+ args, env, cwd) or a streamable HTTP `url`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    prefix: str = ""  # prepended to tool names, to keep two servers' tools apart
    timeout_s: float | None = None  # per call; None: the Toolset's default
    connect_timeout_s: float = 60.0
    resend_on_reconnect: bool = True

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"mcp server {self.name!r}: give exactly one of `command` (stdio) or `url` (HTTP)")
        return self


class MCPServer:
    """A live connection to one MCP server that yields its tools and reconnects on loss."""

    def __init__(self, config: MCPServerConfig):
        self.config = config
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._generation = 0  # bumps on every (re)connect, so concurrent failures reconnect once
        # The server's stderr, kept to explain a crash (a temp file: it never fills a pipe).
        self._errlog = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115

    async def connect(self) -> list[MCPTool]:
        """Connect and list the server's tools (every page), schemas untouched."""
        client = await self._ensure()
        listed, cursor = [], None
        for _ in range(_MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            listed += page.tools
            if (cursor := page.next_cursor) is None:
                break
        tools = []
        for t in listed:
            spec = ToolSpec(
                name=self.config.prefix + t.name,
                description=t.description or "",
                input_schema=t.input_schema,
                output_schema=t.output_schema,
            )
            tools.append(MCPTool(spec=spec, server=self, remote_name=t.name, timeout_s=self.config.timeout_s))
        return tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        """One tools/call, reconnecting (and resending once, if allowed) when the connection is gone."""
        import anyio
        import mcp_types
        from mcp.shared.exceptions import MCPError

        connection_lost = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError)
        for attempt in range(2):
            client = await self._ensure()
            generation = self._generation
            try:
                return await client.call_tool(name, arguments)
            except MCPError as e:
                if e.code != mcp_types.CONNECTION_CLOSED:
                    raise ToolError(f"MCP server {self.config.name}: {e.message}") from e
                lost: BaseException = e
            except connection_lost as e:
                lost = e
            await self._drop(generation)
            if attempt == 1 or not self.config.resend_on_reconnect:
                break
        raise ToolUnavailable(f"MCP server {self.config.name}: connection lost ({lost}){self._stderr_tail()}")

    async def aclose(self) -> None:
        """Close the connection (a stdio server exits). A later call would reconnect."""
        await self._drop(self._generation)

    async def _ensure(self) -> Client:
        """The live client, (re)connecting when the connection is gone (one reconnect for many callers)."""
        async with self._lock:
            if self._task is not None and not self._task.done() and self._client is not None:
                return self._client
            await self._stop_task()
            return await self._start_task()

    async def _start_task(self) -> Client:
        self._stop = asyncio.Event()
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._hold(ready), name=f"mcp:{self.config.name}")
        try:
            async with asyncio.timeout(self.config.connect_timeout_s):
                self._client = await asyncio.shield(ready)
        except BaseException as e:
            await self._stop_task()
            if isinstance(e, asyncio.CancelledError):
                raise
            reason = f"{_reason(e)}{self._stderr_tail()}"
            raise ToolUnavailable(f"MCP server {self.config.name}: cannot connect: {reason}") from e
        self._generation += 1
        return self._client

    async def _hold(self, ready: asyncio.Future[Client]) -> None:
        """Enter the SDK client, publish it, and keep it open until asked to stop (one task, as anyio needs)."""
        from mcp import Client

        try:
            async with Client(self._transport(), mode="auto") as client:
                ready.set_result(client)
                await self._stop.wait()
        except BaseException as e:  # the connection's own failure; callers see it as a lost connection
            if not ready.done():
                ready.set_exception(e if isinstance(e, Exception) else ToolError(repr(e)))
            if isinstance(e, asyncio.CancelledError):
                raise

    def _transport(self) -> Any:
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        cfg = self.config
        if cfg.url is not None:
            return cfg.url
        params = StdioServerParameters(command=cfg.command or "", args=cfg.args, env=cfg.env or None, cwd=cfg.cwd)
        return stdio_client(params, errlog=self._errlog)

    async def _drop(self, generation: int) -> None:
        async with self._lock:
            if generation == self._generation:
                await self._stop_task()

    async def _stop_task(self) -> None:
        task, self._task, self._client = self._task, None, None
        if task is None:
            return
        self._stop.set()
        try:
            async with asyncio.timeout(10):
                await asyncio.shield(task)
        except BaseException:  # a wedged shutdown: cancel it rather than hang the run
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _stderr_tail(self, limit: int = 400) -> str:
        """The server's last stderr lines, which usually say why it died."""
        try:
            self._errlog.flush()
            size = os.fstat(self._errlog.fileno()).st_size
            self._errlog.seek(max(0, size - limit))
            tail = self._errlog.read().strip()
            self._errlog.seek(0, os.SEEK_END)
        except (OSError, ValueError):
            return ""
        return f"; server stderr: {tail}" if tail else ""


class MCPTool:
    """One tool of an MCP server (Tool protocol)."""

    def __init__(self, *, spec: ToolSpec, server: MCPServer, remote_name: str, timeout_s: float | None):
        self.spec, self.server, self.remote_name, self.timeout_s = spec, server, remote_name, timeout_s

    async def run(self, arguments: dict[str, Any]) -> ToolOutput:
        result = await self.server.call_tool(self.remote_name, arguments)
        return result_to_output(result, server=self.server.config.name)


def result_to_output(result: mcp_types.CallToolResult, *, server: str) -> ToolOutput:
    """CallToolResult -> ToolOutput: text for the model, structured content and `_meta` as metadata."""
    import mcp_types

    texts: list[str] = []
    others: list[dict[str, Any]] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            texts.append(block.text)
        elif isinstance(block, mcp_types.EmbeddedResource) and hasattr(block.resource, "text"):
            texts.append(block.resource.text)
        else:  # images, audio, links: the model gets a placeholder, analysis gets the block
            others.append(block.model_dump(mode="json", by_alias=True, exclude_none=True))
            texts.append(_placeholder(block))
    metadata: dict[str, Any] = {"mcp_server": server}
    if result.structured_content is not None:
        metadata["structured"] = result.structured_content
    if result.meta:
        metadata["mcp_meta"] = dict(result.meta)
    if others:
        metadata["mcp_content"] = others
    content: Any = "\n".join(texts) if texts else (result.structured_content or "")
    return ToolOutput(
        content=content, metadata=metadata, is_error=result.is_error, structured=result.structured_content
    )


def _placeholder(block: Any) -> str:
    kind = getattr(block, "type", "content")
    if uri := getattr(block, "uri", None) or getattr(getattr(block, "resource", None), "uri", None):
        return f"[{kind}: {uri}]"
    return f"[{kind}: {getattr(block, 'mime_type', None) or 'binary'}]"


def _reason(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, BaseExceptionGroup):  # anyio wraps the transport's failure; its leaf says what happened
        return "; ".join(_reason(x) for x in e.exceptions)
    return f"{type(e).__name__}: {e}"
