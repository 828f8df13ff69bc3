"""A Toolset from YAML: built-ins by name, Python functions by import path, MCP servers.

    timeout_s: 30            # default per-call timeout
    max_concurrency: 64      # global limit on calls in flight
    tools:
      - builtin: calculator
      - builtin: python
        options: {timeout_s: 10, memory_mb: 256}
      - function: my_package.tools:search      # a plain or @tool-decorated function
        timeout_s: 5
      - mcp: time                              # stdio server
        command: python
        args: [-m, mcp_server_time]
      - mcp: remote                            # streamable HTTP server
        url: http://127.0.0.1:8000/mcp

Every entry is checked (unknown keys are errors naming the key) before anything runs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentroll.errors import ConfigError
from agentroll.tools.base import FunctionTool, function_tool
from agentroll.tools.builtins import BUILTINS, make_builtin
from agentroll.tools.mcp import MCPServerConfig
from agentroll.tools.toolset import Toolset

_STRICT = ConfigDict(extra="forbid", frozen=True)


class ToolEntry(BaseModel):
    """One `tools:` entry: exactly one of `builtin`, `function`, `mcp` (with the MCP server's fields)."""

    model_config = _STRICT

    builtin: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    function: str | None = None
    name: str | None = None
    timeout_s: float | None = None
    mcp: str | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    prefix: str = ""
    resend_on_reconnect: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> ToolEntry:
        kinds = [k for k in ("builtin", "function", "mcp") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("each tool entry needs exactly one of `builtin`, `function`, `mcp`")
        return self


class ToolsetConfig(BaseModel):
    model_config = _STRICT

    timeout_s: float = 30.0
    max_concurrency: int = Field(64, ge=1)
    tools: list[ToolEntry] = Field(default_factory=list)


def load_toolset(path: str | Path | None = None) -> Toolset:
    """The Toolset a YAML file describes; with no file, every built-in with its defaults."""
    if path is None:
        return default_toolset()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        config = ToolsetConfig.model_validate(raw)
    except OSError as e:
        raise ConfigError(f"tools config {path}: {e}") from e
    except (yaml.YAMLError, ValidationError) as e:
        raise ConfigError(f"tools config {path}: {e}") from e
    return toolset_from_config(config, base_dir=Path(path).parent)


def default_toolset() -> Toolset:
    return Toolset([make_builtin(name) for name in BUILTINS])


def toolset_from_config(config: ToolsetConfig, *, base_dir: Path = Path()) -> Toolset:
    tools: list[Any] = []
    servers: list[MCPServerConfig] = []
    for entry in config.tools:
        if entry.builtin is not None:
            tools.append(make_builtin(entry.builtin, **_resolve_paths(entry.options, base_dir)))
        elif entry.function is not None:
            tools.append(_import_function(entry.function, name=entry.name, timeout_s=entry.timeout_s))
        else:
            servers.append(_server_config(entry))
    return Toolset(tools, mcp=servers, timeout_s=config.timeout_s, max_concurrency=config.max_concurrency)


def _server_config(entry: ToolEntry) -> MCPServerConfig:
    try:
        return MCPServerConfig(
            name=entry.mcp or "",
            command=entry.command,
            args=entry.args,
            env=entry.env,
            cwd=entry.cwd,
            url=entry.url,
            prefix=entry.prefix,
            timeout_s=entry.timeout_s,
            resend_on_reconnect=entry.resend_on_reconnect,
        )
    except ValidationError as e:
        raise ConfigError(str(e)) from e


def _import_function(target: str, *, name: str | None, timeout_s: float | None) -> FunctionTool:
    module_name, _, attr = target.partition(":")
    if not attr:
        raise ConfigError(f"function {target!r}: write it as `module:function`")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"function {target!r}: cannot import: {e}") from e
    if isinstance(obj, FunctionTool):
        if name is None and timeout_s is None:
            return obj
        return function_tool(obj.fn, name=name or obj.spec.name, timeout_s=timeout_s or obj.timeout_s)
    if not callable(obj):
        raise ConfigError(f"function {target!r}: is a {type(obj).__name__}, not a function")
    return function_tool(obj, name=name, timeout_s=timeout_s)


def _resolve_paths(options: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """A relative `corpus` path is relative to the config file, not to wherever the run started."""
    if isinstance(options.get("corpus"), str) and not Path(options["corpus"]).is_absolute():
        return {**options, "corpus": str(base_dir / options["corpus"])}
    return options
