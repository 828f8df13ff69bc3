"""Tools (L2): full JSON Schema in/out, async execution, results with metadata.

    from agentroll.tools import Toolset, tool, load_toolset

    @tool
    def add(a: int, b: int) -> int:
        '''Add two integers.'''
        return a + b

    async with Toolset([add]) as tools:
        results = await tools.call_many(parsed_calls)

`Toolset.call` never raises for a tool-side failure; see toolset.py for the contract.
"""

from agentroll.tools.base import FunctionTool, Tool, ToolOutput, function_tool, tool
from agentroll.tools.builtins import BUILTINS, make_builtin
from agentroll.tools.config import ToolsetConfig, default_toolset, load_toolset
from agentroll.tools.mcp import MCPServerConfig
from agentroll.tools.sandbox import SandboxLimits
from agentroll.tools.toolset import Toolset

__all__ = [
    "BUILTINS",
    "FunctionTool",
    "MCPServerConfig",
    "SandboxLimits",
    "Tool",
    "ToolOutput",
    "Toolset",
    "ToolsetConfig",
    "default_toolset",
    "function_tool",
    "load_toolset",
    "make_builtin",
    "tool",
]
