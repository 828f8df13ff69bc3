"""Seeded sampling with prompts longer than one scheduler step, on vLLM's CPU build (the embedded engine and a
vLLM server as engines.launch starts it).

vLLM 0.32 prefills a long prompt in chunks and, after each partial step, rewinds the request's random generator;
a CPU generator cannot be rewound ("CPU Generator does not use offset"), the worker raises and the whole engine
dies with every request in flight. The engines prefill whole prompts on CPU, so a seeded request is served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentroll.types import SamplingParams
from tests.conftest import needs_vllm
from tests.engines.test_conformance import prompt

pytestmark = [pytest.mark.slow, needs_vllm]
MAX_MODEL_LEN = 4096  # room for a prompt longer than vLLM's default step budget on CPU (2,048 tokens)


@pytest.fixture(params=["embedded", "vllm"])
def long_context_engine(request: pytest.FixtureRequest, loop: Any, model_dir: Path) -> Any:
    from agentroll.engines.embedded import EmbeddedEngine
    from agentroll.engines.launch import start_vllm_server
    from agentroll.engines.vllm_server import VLLMServerEngine

    server = None
    if request.param == "embedded":
        engine = EmbeddedEngine(model=str(model_dir), kv_cache_gib=1, max_model_len=MAX_MODEL_LEN)
    else:
        server = start_vllm_server(model_dir, max_model_len=MAX_MODEL_LEN)
        engine = VLLMServerEngine(server.url)
    try:
        yield engine
    finally:
        loop.run(engine.aclose())
        if server is not None:
            server.stop()


def test_a_seeded_request_longer_than_a_prefill_step_is_served(
    long_context_engine: Any, loop: Any, tokenizer: Any
) -> None:
    long = prompt(tokenizer, "apple " * 3000)
    assert 2048 < len(long) < MAX_MODEL_LEN - 16
    sp = SamplingParams(temperature=0.7, max_tokens=8, seed=5, ignore_eos=True)
    first = loop.run(long_context_engine.generate(long, sp), timeout=600)
    assert len(first.token_ids) == 8 and loop.run(long_context_engine.health())  # the engine lives on
    other = loop.run(long_context_engine.generate(prompt(tokenizer, "pear " * 3000), sp), timeout=600)
    assert len(other.token_ids) == 8
