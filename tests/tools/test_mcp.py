"""MCP against real servers: the npm filesystem server and PyPI mcp-server-time over stdio,
and an SDK-built server over streamable HTTP. Schemas arrive whole, results keep their
structured content and `_meta`, and a dead server is reconnected."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
import uuid

import mcp
import pytest
from mcp import StdioServerParameters

from agentroll.errors import ToolError
from agentroll.tools import MCPServerConfig, Toolset
from agentroll.types import ToolCall

from .conftest import children_of


def call(name: str, i: int = 0, **arguments) -> ToolCall:
    return ToolCall(id=f"{name}-{i}", name=name, arguments=arguments)


async def raw_listing(command: str, args: list[str]) -> dict[str, dict]:
    """The server's own tools/list answer, straight from the SDK, to compare ours against."""
    async with mcp.Client(StdioServerParameters(command=command, args=args)) as client:
        listing = await client.list_tools()
    return {t.name: {"input": t.input_schema, "output": t.output_schema} for t in listing.tools}


def test_time_server_tools_arrive_with_their_complete_schemas(time_server_args):
    config = MCPServerConfig(name="time", command=sys.executable, args=time_server_args)

    async def main():
        async with Toolset(mcp=[config]) as tools:
            return tools.specs()

    specs = {s.name: s for s in asyncio.run(main())}
    raw = asyncio.run(raw_listing(sys.executable, time_server_args))
    assert set(specs) == set(raw) == {"get_current_time", "convert_time"}
    for name, schemas in raw.items():
        assert specs[name].input_schema == schemas["input"]
        assert specs[name].output_schema == schemas["output"]
    assert "$defs" in specs["convert_time"].output_schema  # nested output types survive


def test_time_server_call_maps_structured_content_to_metadata(time_server_args):
    config = MCPServerConfig(name="time", command=sys.executable, args=time_server_args)

    async def main():
        async with Toolset(mcp=[config]) as tools:
            return await tools.call_many(
                [call("get_current_time", timezone="Asia/Tokyo"), call("get_current_time", 1, timezone="Mars/Olympus")]
            )

    ok, bad = asyncio.run(main())
    assert not ok.is_error
    structured = ok.metadata["structured"]
    assert structured["timezone"] == "Asia/Tokyo"
    when = dt.datetime.fromisoformat(structured["datetime"])
    assert when.utcoffset() == dt.timedelta(hours=9)
    assert abs((when - dt.datetime.now(dt.UTC)).total_seconds()) < 120
    assert json.loads(ok.content) == structured and ok.metadata["mcp_server"] == "time"
    assert bad.is_error and "Mars/Olympus" in bad.content  # the server's own error, passed on


@pytest.fixture
def sandbox_dir(tmp_path):
    (tmp_path / "notes.txt").write_text(f"stamp {uuid.uuid4().hex}\n")
    return tmp_path


def test_filesystem_server_reads_files_and_refuses_paths_outside_its_root(fs_server, sandbox_dir):
    config = MCPServerConfig(name="fs", command=fs_server, args=[str(sandbox_dir)], prefix="fs_")
    notes = sandbox_dir / "notes.txt"

    async def main():
        async with Toolset(mcp=[config]) as tools:
            specs = {s.name: s for s in tools.specs()}
            results = await tools.call_many(
                [
                    call("fs_read_text_file", path=str(notes)),
                    call("fs_read_text_file", 1, path="/etc/passwd"),
                    call("fs_edit_file", 2, path=str(notes), edits=[{"oldText": "stamp"}]),
                ]
            )
            return specs, results

    specs, (read, outside, bad_edit) = asyncio.run(main())
    edits = specs["fs_edit_file"].input_schema["properties"]["edits"]
    assert edits["items"]["required"] == ["oldText", "newText"]  # arrays of objects, intact
    assert (read.content, read.is_error) == (notes.read_text(), False)
    assert read.metadata["structured"] == {"content": notes.read_text()}
    assert outside.is_error and "outside allowed directories" in outside.content
    assert bad_edit.metadata["error_type"] == "invalid_arguments"
    assert "argument edits[0].newText: required but missing" in bad_edit.content


def test_a_killed_stdio_server_is_restarted_and_the_next_call_works(fs_server, sandbox_dir):
    config = MCPServerConfig(name="fs", command=fs_server, args=[str(sandbox_dir)])
    notes = str(sandbox_dir / "notes.txt")

    async def main():
        async with Toolset(mcp=[config]) as tools:
            first = await tools.call(call("read_text_file", path=notes))
            [(server_pid, _)] = [c for c in children_of(os.getpid()) if "mcp-server-filesystem" in c[1]]
            os.kill(server_pid, signal.SIGKILL)
            await asyncio.sleep(0.3)
            second = await tools.call(call("read_text_file", 1, path=notes))
            [(new_pid, _)] = [c for c in children_of(os.getpid()) if "mcp-server-filesystem" in c[1]]
            return first, second, server_pid, new_pid

    first, second, old_pid, new_pid = asyncio.run(main())
    assert not first.is_error and not second.is_error
    assert second.content == first.content == (sandbox_dir / "notes.txt").read_text()
    assert new_pid != old_pid
    assert [c for c in children_of(os.getpid()) if "mcp-server-filesystem" in c[1]] == []  # closed with the toolset


def test_streamable_http_server_results_keep_meta_and_structured_content(http_server):
    config = MCPServerConfig(name="remote", url=http_server.url)

    async def main():
        async with Toolset(mcp=[config]) as tools:
            specs = {s.name: s for s in tools.specs()}
            return specs, await tools.call_many([call("stamp", label="run1"), call("add", 1, numbers=[2, 3, 4])])

    specs, (stamped, added) = asyncio.run(main())
    assert specs["add"].output_schema["required"] == ["total", "terms"]
    assert stamped.content == f"run1:{http_server.stamp}"
    assert stamped.metadata["mcp_meta"]["agentroll.test/stamp"] == http_server.stamp
    assert stamped.metadata["mcp_meta"]["doc_ids"] == ["d1", "d2"]
    assert stamped.metadata["structured"] == {"label": "run1", "stamp": http_server.stamp}
    assert added.metadata["structured"] == {"total": 9, "terms": 3}


def test_an_http_server_that_restarts_is_reconnected_and_one_that_is_gone_is_an_error_result(http_server):
    config = MCPServerConfig(name="remote", url=http_server.url)

    async def main():
        async with Toolset(mcp=[config], timeout_s=20) as tools:
            before = await tools.call(call("stamp", label="a"))
            http_server.stop()
            http_server.start()  # same port, same stamp, new process and new session
            after = await tools.call(call("stamp", 1, label="b"))
            http_server.stop()
            gone = await tools.call(call("stamp", 2, label="c"))
            return before, after, gone

    before, after, gone = asyncio.run(main())
    assert before.content == f"a:{http_server.stamp}" and after.content == f"b:{http_server.stamp}"
    assert gone.is_error and gone.metadata["error_type"] == "unavailable"
    assert "MCP server remote" in gone.content


def test_a_server_that_cannot_start_fails_at_start_with_its_reason():
    config = MCPServerConfig(name="nope", command=sys.executable, args=["-c", "import sys; sys.exit('bad config')"])

    async def main():
        async with Toolset(mcp=[config]):
            pass

    with pytest.raises(ToolError, match="MCP server nope: cannot connect"):
        asyncio.run(main())


def test_a_hung_mcp_call_times_out_while_other_calls_on_the_same_connection_finish(http_server):
    config = MCPServerConfig(name="remote", url=http_server.url, timeout_s=1.0)

    async def main():
        async with Toolset(mcp=[config]) as tools:
            turn = [call("wait", seconds=600), *(call("stamp", i, label=f"l{i}") for i in range(1, 6))]
            results = await tools.call_many(turn)
            after = await tools.call(call("stamp", 9, label="after"))
            return results, after

    (hung, *stamps), after = asyncio.run(main())
    assert hung.is_error and hung.metadata == {"error_type": "timeout"}
    assert [r.content for r in stamps] == [f"l{i}:{http_server.stamp}" for i in range(1, 6)]
    assert after.content == f"after:{http_server.stamp}"  # the connection survived the cancelled call


@pytest.mark.parametrize("resend", [True, False])
def test_concurrent_calls_after_a_crash_share_one_reconnect(fs_server, sandbox_dir, resend):
    config = MCPServerConfig(name="fs", command=fs_server, args=[str(sandbox_dir)], resend_on_reconnect=resend)
    notes = str(sandbox_dir / "notes.txt")

    def servers() -> list[int]:
        return [pid for pid, cmd in children_of(os.getpid()) if "mcp-server-filesystem" in cmd]

    async def main():
        async with Toolset(mcp=[config]) as tools:
            [old] = servers()
            os.kill(old, signal.SIGKILL)
            await asyncio.sleep(0.3)
            burst = await tools.call_many([call("read_text_file", i, path=notes) for i in range(4)])
            later = await tools.call(call("read_text_file", 9, path=notes))
            return old, servers(), burst, later

    old, now, burst, later = asyncio.run(main())
    assert len(now) == 1 and now[0] != old  # one new server, not one per caller
    assert not later.is_error
    if resend:
        assert all(not r.is_error for r in burst)
    else:  # a call that met the dead connection is reported, not sent twice; the others reconnect
        lost = [r for r in burst if r.is_error]
        assert lost and all(r.metadata["error_type"] == "unavailable" and "connection lost" in r.content for r in lost)
        assert all(r.content == later.content for r in burst if not r.is_error)
