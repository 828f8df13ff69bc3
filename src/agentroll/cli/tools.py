"""`agentroll tools list|call`: inspect and try tools from the shell.

`list` prints the specs as JSON (what the model is shown); `call NAME --args JSON` runs
one call and prints its ToolResult as JSON. Without --config the built-ins are loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid

from agentroll.errors import ConfigError
from agentroll.tools import load_toolset
from agentroll.types import ToolCall


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tools_command", metavar="{list,call}", required=True)
    p_list = sub.add_parser("list", help="print every tool's spec as JSON")
    p_list.add_argument("--config", help="toolset YAML (default: the built-ins)")
    p_call = sub.add_parser("call", help="run one tool call and print its ToolResult as JSON")
    p_call.add_argument("name", help="tool name")
    p_call.add_argument("--args", default="{}", help="arguments as a JSON object (default: {})")
    p_call.add_argument("--config", help="toolset YAML (default: the built-ins)")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_list(args) if args.tools_command == "list" else _call(args))


async def _list(args: argparse.Namespace) -> int:
    async with load_toolset(args.config) as tools:
        specs = [s.model_dump(mode="json", exclude_none=True) for s in tools.specs()]
    json.dump(specs, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


async def _call(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.args)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--args: not JSON: {e}") from e
    if not isinstance(arguments, dict):
        raise ConfigError("--args: must be a JSON object")
    async with load_toolset(args.config) as tools:
        call = ToolCall(id=f"cli-{uuid.uuid4().hex[:8]}", name=args.name, arguments=arguments)
        result = await tools.call(call)
    out = result.model_dump(mode="json", include={"name", "content", "metadata", "is_error", "duration_s"})
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 1 if result.is_error else 0
