"""Session-wide fixtures shared by every test package.

Everything async runs on one event loop in a background thread for the whole session (`loop.run`):
an engine (the embedded AsyncLLM, a pooled HTTP session) is bound to the loop it first ran on, and
the embedded engine (vLLM on CPU, 30-120 s to start on 2 shared cores) is started once per session
and shared by the engine, agent and rollout tests.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
HAVE_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAVE_VLLM, reason="vLLM not installed: run scripts/install_engine.sh")


class LoopThread:
    """An event loop in a daemon thread; `run(coro)` blocks until the coroutine is done."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="engine-tests-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 300) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="session")
def model_dir() -> Path:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch not installed (the model conversion needs it): run scripts/install_engine.sh")
    from agentroll.engines.checkpoint import ensure_default_checkpoint

    return ensure_default_checkpoint()


@pytest.fixture(scope="session")
def embedded(loop: LoopThread, model_dir: Path) -> Iterator[Any]:
    if not HAVE_VLLM:
        pytest.skip("vLLM not installed: run scripts/install_engine.sh")
    from agentroll.engines.embedded import EmbeddedEngine

    engine = EmbeddedEngine(model=str(model_dir), kv_cache_gib=1)
    assert loop.run(engine.health(), timeout=300)
    yield engine
    loop.run(engine.aclose())


# ---- CI says what it did not test ----
# A test of a real component (vLLM, TRL, verl, Ray, BFCL, bubblewrap, chromium, MCP servers) skips where the
# component is missing, so that a partial install can still run the rest. Under AGENTROLL_NO_SKIPS=1 (`./dev
# test`, hence CI, which installs everything) any skip fails the run, except these, each named and justified.
ALLOWED_SKIPS = {
    "a pool answers in one piece: nothing to close early": (
        "the close-a-stream-early case of the engine conformance suite; a pool has no streaming generate"
    ),
}
_SKIPPED: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append((report.nodeid, _reason(report)))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:  # a whole module skipped while collected (a module-level importorskip)
        _SKIPPED.append((report.nodeid, _reason(report)))


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason.removeprefix("Skipped: ")


def _unexplained() -> list[tuple[str, str]]:
    return [(nodeid, reason) for nodeid, reason in _SKIPPED if reason not in ALLOWED_SKIPS]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not os.environ.get("AGENTROLL_NO_SKIPS"):
        return
    allowed = len(_SKIPPED) - len(_unexplained())
    terminalreporter.write_line(f"AGENTROLL_NO_SKIPS: {allowed} allowed skips ({', '.join(sorted(ALLOWED_SKIPS))})")
    for nodeid, reason in _unexplained():
        terminalreporter.write_line(f"UNEXPLAINED SKIP (a component is not installed?): {nodeid}: {reason}", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("AGENTROLL_NO_SKIPS") and _unexplained() and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
