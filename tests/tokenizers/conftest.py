"""Shared fixtures: every tokenizer is built fresh, once per session, into a private cache."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agentroll.renderers.tokenizers import load_tokenizer


@pytest.fixture(scope="session")
def tok(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Any]]:
    """tok(name) -> the loaded tokenizer; built from the packages, never taken from the user's cache."""
    cache = tmp_path_factory.mktemp("agentroll-cache")
    loaded: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in loaded:
            # Point the cache here only while loading, so other test modules keep their own setting.
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("AGENTROLL_CACHE_DIR", str(cache))
                loaded[name] = load_tokenizer(name)
        return loaded[name]

    yield get
