"""Fixtures for the tools tests: real MCP servers (started here, stopped by PID) and the sandbox's needs."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FS_SERVER = REPO / ".cache/npm/node_modules/.bin/mcp-server-filesystem"
INSTALL_HINT = "run scripts/install_tools.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"test MCP server exited early with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"test MCP server not listening on {port} after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class HttpServer:
    """A real streamable-HTTP MCP server process (tests/tools/mcp_http_server.py)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.stamp = uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        script = Path(__file__).with_name("mcp_http_server.py")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(self.port), self.stamp],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fs_server() -> str:
    if not FS_SERVER.exists():
        pytest.skip(f"@modelcontextprotocol/server-filesystem not installed: {INSTALL_HINT}")
    return str(FS_SERVER)


@pytest.fixture
def time_server_args() -> list[str]:
    pytest.importorskip("mcp_server_time", reason=f"mcp-server-time not installed: {INSTALL_HINT}")
    return ["-m", "mcp_server_time", "--local-timezone", "UTC"]


requires_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason=f"bubblewrap not installed: {INSTALL_HINT}")


def children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, cmdline) of the direct children of `pid`, read from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append((int(entry.name), cmd))
    return out


def processes_of_uids(low: int, high: int) -> list[int]:
    """PIDs whose real uid is in [low, high): what a sandbox run may have left behind."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("Uid:") and low <= int(line.split()[1]) < high:
                    pids.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return pids
