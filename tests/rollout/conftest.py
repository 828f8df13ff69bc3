"""The rollout tests use the session-wide embedded engine and event-loop thread (tests/conftest.py):
an engine is bound to the loop it first ran on, and starting it costs 30-120 s on 2 shared cores.
Every process a test starts is stopped by its own PID/group.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HAVE_VLLM, LoopThread

__all__ = ["HAVE_VLLM", "LoopThread"]


@pytest.fixture(scope="module")
def engine(embedded: Any) -> Any:
    return embedded


@pytest.fixture(scope="session")
def vllm_spec(model_dir: Path) -> Iterator[str]:
    """One real vLLM CPU server for the rollout tests that need a separate process to reach it (Ray workers, a
    killed trainer): an engine spec, `vllm://127.0.0.1:PORT`. Stopped by PID at the end of the session."""
    if not HAVE_VLLM:
        pytest.skip("vLLM not installed: run scripts/install_engine.sh")
    from agentroll.engines.launch import start_vllm_server

    server = start_vllm_server(model_dir, kv_cache_gib=1, startup_timeout_s=480)  # 2 cores shared with other tests
    try:
        yield server.url.replace("http://", "vllm://")
    finally:
        server.stop()
