"""One embedded vLLM engine per test module, on one event loop in a background thread.

The engine is bound to the loop it first ran on, and starting it costs 30-120 s on 2 shared cores,
so a module's tests share both. Every process a test starts is stopped by its own PID/group.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
HAVE_VLLM = importlib.util.find_spec("vllm") is not None


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="rollout-tests-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 600) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="module")
def engine(loop: LoopThread) -> Iterator[Any]:
    if not HAVE_VLLM:
        pytest.skip("vLLM not installed: run scripts/install_engine.sh")
    from agentroll.engines.embedded import EmbeddedEngine

    eng = EmbeddedEngine(kv_cache_gib=1)
    assert loop.run(eng.health())
    yield eng
    loop.run(eng.aclose())
