"""Fixtures for the engine tests: two real vLLM CPU servers, started with
`agentroll.engines.launch.start_vllm_server` and stopped by PID (process group). The event-loop
thread, the model checkpoint and the embedded engine are session-wide (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HAVE_VLLM, LoopThread, needs_vllm

__all__ = ["HAVE_VLLM", "LoopThread", "needs_vllm"]


@pytest.fixture(scope="session")
def tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


@pytest.fixture(scope="session")
def vllm_servers(model_dir: Path) -> Iterator[list[Any]]:
    """Two real vLLM CPU servers (small KV cache), started in parallel, stopped by PID."""
    if not HAVE_VLLM:
        pytest.skip("vLLM not installed: run scripts/install_engine.sh")
    from concurrent.futures import ThreadPoolExecutor

    from agentroll.engines.launch import start_vllm_server

    with ThreadPoolExecutor(2) as ex:
        futures = [ex.submit(start_vllm_server, model_dir, kv_cache_gib=1) for _ in range(2)]
    started = [f.result() for f in futures if f.exception() is None]
    servers = list(started)  # a test may replace a server it killed; stop whatever is here at the end
    try:
        if len(started) < 2:
            raise next(f.exception() for f in futures if f.exception() is not None)
        yield servers
    finally:
        for server in {id(s): s for s in [*started, *servers]}.values():
            server.stop()


@pytest.fixture(scope="session")
def vllm_server(vllm_servers: list[Any]) -> Any:
    return vllm_servers[0]
