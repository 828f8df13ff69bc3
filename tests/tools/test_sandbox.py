"""The `python` tool's sandbox: every escape attempt is a real one, contained and reported.

Each test runs hostile code through the Toolset (as an episode would) and checks three
things: the attempt failed, the result says why, and this test process is unharmed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
import uuid

import pytest

from agentroll.tools import SandboxLimits, Toolset, make_builtin
from agentroll.tools.sandbox import _UID_BASE
from agentroll.types import ToolCall, ToolResult

from .conftest import processes_of_uids, requires_bwrap

pytestmark = requires_bwrap

FAST = {"timeout_s": 5.0, "cpu_s": 2, "memory_mb": 256, "max_processes": 16}


def run_code(code: str, **limits) -> ToolResult:
    toolset = Toolset([make_builtin("python", **{**FAST, **limits})])
    return asyncio.run(toolset.call(ToolCall(id="py", name="python", arguments={"code": code})))


def assert_nothing_left_behind() -> None:
    deadline = time.monotonic() + 5
    while processes_of_uids(_UID_BASE, _UID_BASE + 4096) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_of_uids(_UID_BASE, _UID_BASE + 4096) == []


def assert_unharmed() -> None:
    assert subprocess.run(["true"], check=False).returncode == 0  # we can still fork and exec
    assert asyncio.run(asyncio.sleep(0, result="loop ok")) == "loop ok"


def test_code_runs_and_its_output_comes_back():
    result = run_code("import sys\nprint(sum(range(101)))\nprint('to stderr', file=sys.stderr)")
    assert not result.is_error
    assert result.content == "exit code 0\nstdout:\n5050\nstderr:\nto stderr"
    assert result.metadata["exit_code"] == 0 and result.metadata["timed_out"] is False


def test_reading_files_outside_the_sandbox_fails(tmp_path):
    secret = tmp_path / "secret.txt"
    stamp = uuid.uuid4().hex
    secret.write_text(stamp)
    code = f"""
import os
for path in [{str(secret)!r}, "/etc/hostname", "/etc/passwd", {os.path.abspath(__file__)!r}]:
    try:
        print(path, "READ", open(path).read()[:40])
    except OSError as e:
        print(path, "DENIED", type(e).__name__)
print("root:", sorted(os.listdir("/")))
open("mine.txt", "w").write("own files are fine")
print(open("mine.txt").read())
"""
    result = run_code(code)
    assert stamp not in result.content
    assert "READ" not in result.content
    assert result.content.count("DENIED FileNotFoundError") == 4
    assert "own files are fine" in result.content
    assert "'home'" not in result.content and "'etc'" not in result.content


def test_opening_a_socket_reaches_nothing():
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.settimeout(0.1)
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
                received.append(conn.recv(100))
            except OSError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    code = f"""
import socket
for host, port in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("example.com", 80)]:
    try:
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(b"escaped")
        print(host, "CONNECTED")
    except OSError as e:
        print(host, "BLOCKED", type(e).__name__)
"""
    result = run_code(code)
    done.set()
    thread.join()
    listener.close()
    assert received == []
    assert "CONNECTED" not in result.content
    assert result.content.count("BLOCKED") == 3


def test_a_fork_bomb_is_contained():
    code = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    start = time.perf_counter()
    result = run_code(code, timeout_s=3.0)
    assert time.perf_counter() - start < 10
    assert result.is_error and result.metadata["timed_out"] is True
    assert result.content.startswith("killed: wall-clock limit of 3 s reached")
    assert_nothing_left_behind()
    assert_unharmed()


def test_unbounded_memory_is_refused():
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(50_000_000))"
    result = run_code(code, memory_mb=200)
    assert result.is_error and result.metadata["exit_code"] == 1
    assert "MemoryError" in result.content
    assert_unharmed()


def test_an_infinite_loop_is_stopped_by_the_cpu_limit():
    # The wall-clock limit is far away, so only the CPU limit can have stopped it (even on a loaded machine).
    result = run_code("while True:\n    pass", cpu_s=1, timeout_s=60.0)
    assert result.is_error and result.metadata["timed_out"] is False
    assert "killed by SIG" in result.content and "(CPU-time or memory limit)" in result.content
    assert_nothing_left_behind()


def test_a_program_that_sleeps_is_killed_at_the_wall_clock_limit():
    start = time.perf_counter()
    result = run_code("import time\nprint('started', flush=True)\ntime.sleep(600)", timeout_s=4.0)
    assert 4.0 <= time.perf_counter() - start < 10
    assert result.is_error and result.metadata["timed_out"] is True and result.metadata["exit_code"] is None
    assert "started" in result.content  # output before the kill is kept
    assert_nothing_left_behind()


def test_output_is_truncated():
    result = run_code("print('x' * 1_000_000)", max_output_bytes=100)
    assert result.metadata["truncated"] is True
    assert "x" * 100 in result.content and "x" * 101 not in result.content
    assert "(output truncated to 100 bytes per stream)" in result.content


def test_each_run_gets_a_fresh_working_directory():
    run_code("open('left.txt', 'w').write('from the first run')")
    result = run_code("import os\nprint(os.listdir('.'))")
    assert result.content == "exit code 0\nstdout:\n[]"


def test_without_bubblewrap_the_tool_fails_closed(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH: nothing may run unsandboxed
    marker = tmp_path / "ran"
    result = run_code(f"open({str(marker)!r}, 'w').write('ran unsandboxed')")
    assert result.is_error and result.metadata == {"error_type": "unavailable"}
    assert "refusing to run code unsandboxed" in result.content
    assert not marker.exists()


@pytest.mark.parametrize("limit", [{"cpu_s": 1}, {"memory_mb": 64}])
def test_limits_are_applied_inside(limit):
    code = (
        "import resource\nprint(resource.getrlimit(resource.RLIMIT_CPU)[0], resource.getrlimit(resource.RLIMIT_AS)[0])"
    )
    limits = SandboxLimits(**{**FAST, **limit})
    result = run_code(code, **limit)
    cpu, mem = result.content.splitlines()[-1].split()
    assert (int(cpu), int(mem)) == (limits.cpu_s, limits.memory_mb * 1024 * 1024)


def test_cancelling_a_run_kills_the_sandbox():
    toolset = Toolset([make_builtin("python", **FAST)])

    async def cancel_midway():
        code = "import time\nwhile True:\n    time.sleep(1)"
        task = asyncio.ensure_future(toolset.call(ToolCall(id="py", name="python", arguments={"code": code})))
        for _ in range(100):  # wait until the sandboxed program is really running
            if processes_of_uids(_UID_BASE, _UID_BASE + 4096):
                break
            await asyncio.sleep(0.05)
        assert processes_of_uids(_UID_BASE, _UID_BASE + 4096)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    assert_nothing_left_behind()


def test_a_read_only_folder_of_the_workdir_cannot_be_changed(tmp_path):
    """What repo_task mounts its pristine tests with: the code can read them, not rewrite or delete them."""
    from agentroll.tools.sandbox import SandboxLimits, run_python

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("ORIGINAL\n")
    code = """
import os, shutil
print(open('/work/tests/test_a.py').read().strip())
for attempt in (lambda: open('/work/tests/test_a.py', 'w').write('FORGED'),
                lambda: os.remove('/work/tests/test_a.py'),
                lambda: shutil.rmtree('/work/tests'),
                lambda: open('/work/tests/new.py', 'w')):
    try:
        attempt()
        print('CHANGED')
    except OSError as e:
        print(type(e).__name__)
open('/work/other.txt', 'w').write('the rest stays writable')
"""
    result = asyncio.run(run_python(code, SandboxLimits(**FAST), workdir=str(tmp_path), read_only=("tests",)))
    assert "CHANGED" not in result.stdout and result.stdout.startswith("ORIGINAL"), result
    assert (tmp_path / "tests" / "test_a.py").read_text() == "ORIGINAL\n" and (tmp_path / "other.txt").exists()
