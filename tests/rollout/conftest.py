"""The rollout tests use the session-wide embedded engine and event-loop thread (tests/conftest.py):
an engine is bound to the loop it first ran on, and starting it costs 30-120 s on 2 shared cores.
Every process a test starts is stopped by its own PID/group.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import HAVE_VLLM, LoopThread

__all__ = ["HAVE_VLLM", "LoopThread"]


@pytest.fixture(scope="module")
def engine(embedded: Any) -> Any:
    return embedded
