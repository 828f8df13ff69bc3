"""The executor: failures are results, timeouts cancel, limits hold, metadata reaches the trajectory."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from agentroll.tools import ToolOutput, Toolset, make_builtin, tool
from agentroll.trajectory import Trajectory
from agentroll.types import ToolCall


def call(name: str, i: int = 0, **arguments) -> ToolCall:
    return ToolCall(id=f"call-{name}-{i}", name=name, arguments=arguments)


class Probe:
    """Counts calls in flight and records how each one ended."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.cancelled: list[str] = []

    def make_tools(self):
        @tool
        async def sleep_forever(label: str) -> str:
            """Never returns."""
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.append(label)
                raise
            return "unreachable"

        @tool
        async def hold(seconds: float) -> str:
            """Sleep, counting how many calls are in flight."""
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                await asyncio.sleep(seconds)
            finally:
                self.in_flight -= 1
            return f"held {seconds}"

        return [sleep_forever, hold]


@tool
def explode(reason: str) -> str:
    """Raise."""
    raise RuntimeError(f"boom: {reason}")


@tool
def garbage() -> str:
    """Return something that is not JSON."""
    return object()  # type: ignore[return-value]


def test_a_tool_that_sleeps_forever_is_cancelled_at_its_timeout_while_other_calls_finish():
    probe = Probe()
    toolset = Toolset(probe.make_tools(), timeout_s=0.5)
    calls = [call("sleep_forever", label="stuck"), call("hold", 1, seconds=0.05), call("hold", 2, seconds=0.1)]

    start = time.perf_counter()
    results = asyncio.run(toolset.call_many(calls))
    elapsed = time.perf_counter() - start

    stuck, quick1, quick2 = results
    assert stuck.is_error and stuck.metadata == {"error_type": "timeout"}
    assert stuck.content == "tool sleep_forever timed out after 0.5 s and was cancelled"
    assert probe.cancelled == ["stuck"]  # really cancelled, not abandoned
    assert (quick1.content, quick2.content) == ("held 0.05", "held 0.1")
    assert not quick1.is_error and not quick2.is_error
    assert [r.tool_call_id for r in results] == [c.id for c in calls]
    assert 0.5 <= elapsed < 2.0


def test_a_tool_that_raises_is_an_error_result_and_the_next_call_still_runs():
    toolset = Toolset([explode, make_builtin("calculator")])
    failed, fine = asyncio.run(
        toolset.call_many([call("explode", reason="disk full"), call("calculator", expression="6*7")])
    )
    assert failed.is_error and failed.metadata == {"error_type": "exception"}
    assert failed.content == "tool explode failed: RuntimeError: boom: disk full"
    assert (fine.content, fine.is_error) == ("42", False)


def test_a_tool_that_returns_garbage_is_an_error_result():
    result = asyncio.run(Toolset([garbage]).call(call("garbage")))
    assert result.is_error and result.metadata["error_type"] == "invalid_output"
    assert "not JSON-serialisable (object)" in result.content


def test_an_unknown_tool_is_an_error_result_naming_the_available_tools():
    result = asyncio.run(Toolset([explode, garbage]).call(call("delete_everything")))
    assert result.is_error and result.metadata == {"error_type": "unknown_tool"}
    assert result.content == "unknown tool 'delete_everything'; available tools: explode, garbage"


def test_the_global_limit_bounds_calls_in_flight_across_episodes():
    probe = Probe()
    toolset = Toolset(probe.make_tools(), max_concurrency=2)

    async def two_episodes():
        turn = [call("hold", i, seconds=0.05) for i in range(4)]
        return await asyncio.gather(toolset.call_many(turn), toolset.call_many(turn))

    results = asyncio.run(two_episodes())
    assert all(not r.is_error for batch in results for r in batch)
    assert probe.peak == 2


def test_the_per_episode_limit_bounds_one_turns_calls():
    probe = Probe()
    toolset = Toolset(probe.make_tools(), max_concurrency=16)
    turn = [call("hold", i, seconds=0.05) for i in range(4)]
    asyncio.run(toolset.call_many(turn, max_concurrency=1))
    assert probe.peak == 1
    asyncio.run(toolset.call_many(turn))
    assert probe.peak == 4


def test_cancelling_the_caller_cancels_its_tool_calls():
    probe = Probe()
    toolset = Toolset(probe.make_tools(), timeout_s=60)

    async def cancel_midway():
        task = asyncio.ensure_future(
            toolset.call_many([call("sleep_forever", label="a"), call("sleep_forever", 1, label="b")])
        )
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    assert sorted(probe.cancelled) == ["a", "b"]


def test_sync_tools_run_off_the_event_loop():
    @tool
    def blocking(seconds: float) -> str:
        """A blocking sleep."""
        time.sleep(seconds)
        return threading.current_thread().name

    toolset = Toolset([blocking])
    start = time.perf_counter()
    results = asyncio.run(toolset.call_many([call("blocking", i, seconds=0.3) for i in range(3)]))
    assert time.perf_counter() - start < 0.8  # three 0.3 s sleeps overlapped
    assert all(r.content != threading.main_thread().name for r in results)


def test_an_inline_tool_runs_on_the_event_loop_thread():
    @tool(inline=True)
    def where() -> str:
        """The thread this call ran on."""
        return threading.current_thread().name

    (result,) = asyncio.run(Toolset([where]).call_many([call("where")]))
    assert result.content == threading.main_thread().name  # no worker thread was involved
    assert make_builtin("calculator").inline  # bounded arithmetic: cheaper inline than a thread hop


def test_a_tool_can_attach_metadata_and_flag_its_own_error():
    @tool
    def lookup(key: str) -> ToolOutput:
        """Look a key up."""
        if key != "known":
            return ToolOutput(content=f"no entry for {key}", metadata={"miss": key}, is_error=True)
        return ToolOutput(content={"value": 3}, metadata={"source": "table"})

    hit, miss = asyncio.run(Toolset([lookup]).call_many([call("lookup", key="known"), call("lookup", 1, key="x")]))
    assert (hit.content, hit.metadata, hit.is_error) == ('{"value": 3}', {"source": "table"}, False)
    assert (miss.content, miss.metadata, miss.is_error) == ("no entry for x", {"miss": "x"}, True)


def test_tool_metadata_survives_into_the_trajectory_and_its_json():
    result = asyncio.run(Toolset([make_builtin("retrieve")]).call(call("retrieve", query="Apollo 11 moon landing")))
    assert result.metadata["doc_ids"][0] == "hist-002"
    traj = Trajectory(id="t1", tool_results=[result], messages=[result.to_message()])
    again = Trajectory.from_dict(json.loads(json.dumps(traj.to_dict())))
    assert again.tool_results[0].metadata == result.metadata
    assert again.tool_results[0].duration_s == result.duration_s
