"""Start and stop a local vLLM server as a child process (tests, benchmarks, `engine check`).

The server runs in its own process group so `stop()` ends it and its engine workers together,
by PID, never by name. Everything it caches goes under a private temp dir.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from agentroll.engines import vllm_worker
from agentroll.errors import EngineUnavailable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A running server: `url` to reach it, `stop()` to end it (SIGTERM, then SIGKILL)."""

    url: str
    proc: subprocess.Popen
    log_path: Path
    workdir: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """Kill it hard, as a crash would (the pool tests use this)."""
        self._signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, grace_s: float = 15.0) -> None:
        if self.workdir is None:  # stopped already (an explicit stop, then the atexit one)
            return
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=30)
        self._signal(signal.SIGKILL)  # stragglers left in the group (engine workers)
        if self.workdir is not None:
            self.workdir.cleanup()
            self.workdir = None

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)  # the group id is the server's PID (start_new_session)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def start_vllm_server(
    model_dir: str | Path,
    *,
    port: int | None = None,
    max_model_len: int = 2048,
    kv_cache_gib: int = 1,
    dtype: str = "float32",
    logprobs_mode: str = "processed_logprobs",
    extra_args: tuple[str, ...] = (),
    startup_timeout_s: float = 240.0,
) -> ServerProcess:
    """Start `python -m vllm.entrypoints.openai.api_server` on 127.0.0.1 and wait for /health.

    Logprobs are of the sampling distribution (`--logprobs-mode processed_logprobs`), and vLLM's RL
    endpoints (pause, resume, weight reload and version, weight checker) are on (VLLM_SERVER_DEV_MODE=1:
    a server on loopback for tests and one machine; do not expose those endpoints beyond it)."""
    port = port or free_port()
    workdir = tempfile.TemporaryDirectory(prefix="agentroll-vllm-")
    env = dict(os.environ)
    env.update(
        VLLM_CPU_KVCACHE_SPACE=str(kv_cache_gib),
        VLLM_CPU_NUM_OF_RESERVED_CPU="0",
        VLLM_CACHE_ROOT=f"{workdir.name}/vllm",
        TORCHINDUCTOR_CACHE_DIR=f"{workdir.name}/inductor",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        HF_HUB_OFFLINE="1",
        VLLM_SERVER_DEV_MODE="1",
    )
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--max-model-len", str(max_model_len)]
    cmd += ["--enable-scale-out", "--enforce-eager", "--dtype", dtype, "--enable-prompt-tokens-details"]
    cmd += ["--logprobs-mode", logprobs_mode]
    cmd += ["--worker-extension-cls", vllm_worker.EXTENSION]  # weight reloads that miss no tied layer
    if _cpu_build():  # seeded requests must not be prefilled in pieces on CPU (engines/embedded.py, _cpu_scheduling)
        cmd += ["--no-enable-chunked-prefill", "--max-num-batched-tokens", str(max(max_model_len, 2048))]
    cmd += list(extra_args)
    log_path = Path(workdir.name) / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = ServerProcess(f"http://127.0.0.1:{port}", proc, log_path, workdir)
    atexit.register(server.stop)  # never leave a server behind when the caller forgets or crashes
    try:
        _wait_healthy(server, startup_timeout_s)
    except BaseException:
        tail = server.log_tail()
        server.stop()
        raise EngineUnavailable(f"vLLM server on port {port} did not become healthy:\n{tail}") from None
    return server


def _cpu_build() -> bool:
    """vLLM's CPU build (the `vllm-cpu` distribution), without importing vLLM."""
    try:
        importlib.metadata.version("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _wait_healthy(server: ServerProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("server did not become healthy in time")
