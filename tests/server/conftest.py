"""Fixtures: an in-process app in front of a dead engine (fast), and one real server (slow).

The slow server is `agentroll serve` in a subprocess on 127.0.0.1 with the embedded vLLM engine
(SmolLM2-135M); it is started once per test session and stopped by its PID's process group.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentroll.engines.http import RetryPolicy
from agentroll.engines.vllm_server import VLLMServerEngine
from agentroll.server.app import ServerConfig, create_app

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAVE_VLLM, reason="vLLM not installed: run scripts/install_engine.sh")
MODEL = "smollm2"


# Bound and never listening: connections to it are refused, and no other process can take the port.
_NO_SERVER = socket.socket()
_NO_SERVER.bind(("127.0.0.1", 0))


def dead_engine() -> VLLMServerEngine:
    """A real HTTP engine whose server is not there: every call fails with connection refused."""
    return VLLMServerEngine(f"http://127.0.0.1:{_NO_SERVER.getsockname()[1]}", retry=RetryPolicy(attempts=1))


def make_dead_app(**config: object):
    return create_app(ServerConfig(warm_up=False, **config), engine=dead_engine())


@pytest.fixture(scope="session")
def dead_app():
    return make_dead_app()


@pytest.fixture(scope="session")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real `agentroll serve` (embedded engine), started for this test session.

    AGENTROLL_TEST_SERVE_URL reuses a server you started yourself (`agentroll serve --max-tokens 32`)."""
    if os.environ.get("AGENTROLL_TEST_SERVE_URL"):
        yield os.environ["AGENTROLL_TEST_SERVE_URL"]
        return
    if not HAVE_VLLM:
        pytest.skip("vLLM not installed: run scripts/install_engine.sh")
    tmp = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "VLLM_CACHE_ROOT": str(tmp / "vllm"), "TORCHINDUCTOR_CACHE_DIR": str(tmp / "inductor")}
    port_file = tmp / "port"
    cmd = [sys.executable, "-m", "agentroll", "serve", "--port", "0", "--port-file", str(port_file)]
    cmd += ["--max-tokens", "32", "--save-dir", str(tmp / "run")]
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        # The engine starts in 40-80 s alone, in minutes on a loaded 2-core machine.
        url = _wait_healthy(port_file, proc, tmp / "serve.log", deadline_s=600)
        yield url
    finally:
        _stop(proc)
        log.close()


def _wait_healthy(port_file: Path, proc: subprocess.Popen, log: Path, deadline_s: float) -> str:
    """The server's URL once /health says the engine is up (the server picked its own port: --port 0)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"agentroll serve exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        url = f"http://127.0.0.1:{port_file.read_text()}" if port_file.exists() else None
        try:
            if url and httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"agentroll serve not healthy after {deadline_s} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (uvicorn shuts the engine down, writes --save-dir), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
