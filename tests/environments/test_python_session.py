"""The stateful Python sandbox session: state persists across one episode's calls, never across episodes,
the isolation of the `python` tool holds for the whole session, and teardown leaves no process and no
directory behind. The last test runs the example config on the embedded engine."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agentroll.agent.task import Task
from agentroll.environments.python_session import PythonSessionEnvironment
from agentroll.rollout.config import load_config
from agentroll.rollout.runner import run
from agentroll.rollout.store import read_records
from agentroll.tools.sandbox import _UID_BASE, PythonSession, SandboxLimits
from agentroll.trajectory import Trajectory
from agentroll.types import Message, ToolCall

from ..tools.conftest import processes_of_uids, requires_bwrap

pytestmark = requires_bwrap
TASK = Task(id="t", messages=(Message(role="user", content="compute"),))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _left_behind() -> list[int]:
    return processes_of_uids(_UID_BASE, _UID_BASE + 4096)


def test_variables_imports_and_files_persist_across_calls_and_the_last_expression_is_printed():
    async def go():
        async with PythonSession() as py:
            outs = [await py.run(c) for c in ("import math\nx = 41", "x + 1", "open('n.txt', 'w').write(str(math.pi))",
                                              "print(open('n.txt').read()[:4])", "None")]  # fmt: skip
            return outs, py.workdir

    outs, workdir = asyncio.run(go())
    assert [o.stdout for o in outs] == ["", "42\n", "17\n", "3.14\n", ""] and all(o.ok for o in outs)
    assert not os.path.exists(workdir) and _left_behind() == []


def test_the_session_sees_no_host_file_no_network_and_what_it_prints_cannot_reach_the_protocol():
    async def go():
        async with PythonSession() as py:
            host = await py.run("open('/etc/hostname').read()")
            net = await py.run("import socket; socket.create_connection(('127.0.0.1', 22), timeout=1)")
            raw = await py.run("import os; os.write(1, b'{\"ok\": true}\\n'); os.system('echo from a child')")
            err = await py.run("1/0")
            return host, net, raw, err

    host, net, raw, err = asyncio.run(go())
    assert not host.ok and "FileNotFoundError" in host.stderr
    assert not net.ok and ("Network is unreachable" in net.stderr or "refused" in net.stderr)
    assert raw.ok and raw.stdout.startswith('{"ok": true}\nfrom a child\n')  # captured as the code's output
    assert not err.ok and err.stderr.splitlines()[-1] == "ZeroDivisionError: division by zero"
    assert 'File "<cell>", line 1' in err.stderr and "<string>" not in err.stderr  # the driver's frame is hidden


def test_a_call_past_its_limit_kills_the_session_and_the_next_call_says_its_state_is_gone():
    async def go():
        async with PythonSession(SandboxLimits(timeout_s=2, cpu_s=30)) as py:
            await py.run("x = 1")
            first = py.pid
            hung = await py.run("import os\nos.fork()\nwhile True: pass")
            after = await py.run("x")
            return hung, after, first != py.pid

    hung, after, restarted = asyncio.run(go())
    assert hung.killed == "wall-clock limit of 2 s reached" and not hung.ok
    assert restarted and "previous session was killed" in after.stdout and "NameError" in after.stderr
    assert _left_behind() == []  # the forked child went with it


def test_two_episodes_have_two_sessions_and_teardown_removes_each():
    env = PythonSessionEnvironment(max_concurrent=2, timeout_s=5)

    async def go():
        a, b = await env.setup(TASK, "t:0"), await env.setup(TASK, "t:1")
        tool_a, tool_b = a.tools, b.tools
        await tool_a.call(ToolCall(id="1", name="python", arguments={"code": "secret = 7\nopen('f', 'w').write('a')"}))
        seen = await tool_b.call(
            ToolCall(id="2", name="python", arguments={"code": "import os; (os.listdir('.'), 'secret' in dir())"})
        )
        mine = await tool_a.call(ToolCall(id="3", name="python", arguments={"code": "secret"}))
        dirs = (a.session.workdir, b.session.workdir)
        await a.teardown()
        await b.teardown()
        return seen, mine, dirs

    seen, mine, dirs = asyncio.run(go())
    assert seen.content == "([], False)" and mine.content == "7"
    assert not any(os.path.exists(d) for d in dirs) and _left_behind() == []


@pytest.mark.slow
def test_the_example_config_runs_on_the_embedded_engine(loop, embedded, tmp_path):
    config = load_config(EXAMPLES / "python_session.yaml")
    config = config.model_copy(update={"dataset": config.dataset.model_copy(update={"limit": 2})})
    summary = loop.run(run(config, tmp_path / "run", engine=embedded, progress=False), timeout=600)
    trajs = [Trajectory.from_dict(r) for r in read_records(Path(summary["trajectories"]))]
    assert len(trajs) == 2 * config.samples_per_task
    ran = [r for t in trajs for r in t.tool_results if r.name == "python" and "sandbox_s" in r.metadata]
    assert ran  # guided first calls ran in the episodes' sessions (a 135M model can still overrun max_tokens)
    for t in trajs:
        assert t.turns[0].constrained == "tool_call"  # the first turn was held to a python call
        assert t.metadata["environment"]["name"] == "python_session" and "teardown_s" in t.metadata["environment"]
    assert _left_behind() == []
