"""A toolset from YAML (built-ins, import paths, MCP servers) and the `agentroll tools` CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentroll.cli.main import main
from agentroll.errors import ConfigError
from agentroll.tools import load_toolset
from agentroll.types import ToolCall

from .conftest import REPO

EXAMPLE = REPO / "examples/tools.yaml"


@pytest.fixture
def venv_on_path(monkeypatch):
    """`command: python` in a config means the interpreter running us (it has mcp-server-time)."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tools.yaml"
    path.write_text(text)
    return path


def test_yaml_loads_builtins_import_paths_and_an_mcp_server(tmp_path, venv_on_path, time_server_args):
    path = write(
        tmp_path,
        f"""
timeout_s: 7
tools:
  - builtin: calculator
  - function: tests.tools.sample_tools:stock
  - function: tests.tools.sample_tools:loud
  - mcp: time
    command: python
    args: {json.dumps(time_server_args)}
""",
    )

    async def main_():
        async with load_toolset(path) as tools:
            names = [s.name for s in tools.specs()]
            results = await tools.call_many(
                [
                    ToolCall(id="1", name="stock", arguments={"item": "apple"}),
                    ToolCall(id="2", name="shout", arguments={"text": "hi"}),
                    ToolCall(id="3", name="get_current_time", arguments={"timezone": "UTC"}),
                ]
            )
            return tools, names, results

    tools, names, (stock, shout, now) = asyncio.run(main_())
    assert names == ["calculator", "stock", "shout", "get_current_time", "convert_time"]
    assert tools.timeout_s == 7
    assert json.loads(stock.content) == {"count": 3, "warehouse": 1}
    assert shout.content == "HI"
    assert now.metadata["structured"]["timezone"] == "UTC"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tools:\n  - builtin: calculator\n    colour: red\n", "colour"),
        ("tools:\n  - builtin: calculator\n    function: a:b\n", "exactly one of `builtin`, `function`, `mcp`"),
        ("tools:\n  - function: tests.tools.sample_tools:nothing_here\n", "cannot import"),
        ("tools:\n  - function: json\n", "write it as `module:function`"),
        ("tools:\n  - mcp: x\n", "exactly one of `command` (stdio) or `url` (HTTP)"),
        ("tools:\n  - builtin: calculator\n  - builtin: calculator\n", "tool 'calculator' is defined twice"),
        ("tools: [\n", "tools config"),
    ],
)
def test_a_bad_config_is_refused_before_anything_runs(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_toolset(write(tmp_path, text))
    assert message in str(info.value)


def test_the_example_config_loads(venv_on_path):
    async def main_():
        async with load_toolset(EXAMPLE) as tools:
            return [s.name for s in tools.specs()]

    assert asyncio.run(main_()) == ["calculator", "retrieve", "python", "get_current_time", "convert_time"]


def test_cli_lists_the_builtins_without_a_config(capsys):
    assert main(["tools", "list"]) == 0
    specs = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in specs] == ["calculator", "python", "retrieve"]
    assert specs[0]["input_schema"]["required"] == ["expression"]


def test_cli_call_prints_the_tool_result_as_json(capsys):
    assert main(["tools", "call", "retrieve", "--args", '{"query": "Gutenberg printing press", "k": 1}']) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"name", "content", "metadata", "is_error", "duration_s"}
    assert out["metadata"]["doc_ids"] == ["hist-001"] and out["is_error"] is False


def test_cli_call_with_bad_arguments_prints_the_error_result_and_exits_1(capsys):
    assert main(["tools", "call", "calculator", "--args", '{"expr": "1"}']) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["is_error"] is True and "argument expression: required but missing" in out["content"]
    assert main(["tools", "call", "calculator", "--args", "not json"]) == 2
    assert "--args: not JSON" in capsys.readouterr().err


def test_cli_entry_point_calls_an_mcp_tool_from_a_config(tmp_path, time_server_args):
    path = write(
        tmp_path, f"tools:\n  - mcp: time\n    command: {sys.executable}\n    args: {json.dumps(time_server_args)}\n"
    )
    args = ["tools", "call", "convert_time", "--config", str(path)]
    args += ["--args", json.dumps({"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Kolkata"})]
    proc = subprocess.run(
        [sys.executable, "-m", "agentroll", *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["metadata"]["structured"]["target"]["datetime"].endswith("T17:30:00+05:30")
