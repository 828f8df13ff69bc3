"""A real streamable-HTTP MCP server for the tests (mcp SDK's MCPServer on 127.0.0.1).

Run: python mcp_http_server.py PORT STAMP. Its `stamp` tool returns a value only this
process knows (STAMP), as text, as structured content and in the result's `_meta`,
so a test can only see it by a real round trip.
"""

from __future__ import annotations

import asyncio
import sys

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

PORT, STAMP = int(sys.argv[1]), sys.argv[2]
server = MCPServer("agentroll-test-http")


class Sum(BaseModel):
    total: int
    terms: int


@server.tool()
def add(numbers: list[int]) -> Sum:
    """Add a list of integers."""
    return Sum(total=sum(numbers), terms=len(numbers))


@server.tool()
def stamp(label: str) -> CallToolResult:
    """Return this server's stamp for a label."""
    return CallToolResult(
        content=[TextContent(type="text", text=f"{label}:{STAMP}")],
        structured_content={"label": label, "stamp": STAMP},
        _meta={"agentroll.test/stamp": STAMP, "doc_ids": ["d1", "d2"]},
    )


@server.tool()
async def wait(seconds: float) -> str:
    """Sleep, then say how long."""
    await asyncio.sleep(seconds)
    return f"waited {seconds}"


if __name__ == "__main__":
    server.run(transport="streamable-http", host="127.0.0.1", port=PORT)
