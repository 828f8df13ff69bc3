"""One conformance suite for the Engine protocol, run on every engine that can run here.

Cases: the embedded AsyncLLM, a vLLM server through /inference/v1/generate, and a pool of two
servers. All are real vLLM CPU engines on the same
fp32 SmolLM2 checkpoint; nothing here is canned.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import urllib.request
from typing import Any

import pytest

from agentroll.engines.base import Engine, PromptScorer
from agentroll.engines.verify import TOLERANCE, check_logprobs
from agentroll.errors import ContextOverflow, EngineTimeout
from agentroll.types import SamplingParams

pytestmark = pytest.mark.slow

CASES = ["embedded", "vllm-generate", "pool"]  # vLLM's /v1/completions fallback: test_openai_compat.py
_built: dict[str, Any] = {}


@pytest.fixture(scope="session")
def engines(request: pytest.FixtureRequest, loop: Any) -> Any:
    yield _built
    for engine in _built.values():
        loop.run(engine.aclose())
    _built.clear()


@pytest.fixture(params=CASES)
def engine(request: pytest.FixtureRequest, engines: dict[str, Any], loop: Any) -> Engine:
    name = request.param
    if name not in engines:
        engines[name] = _build(name, request)
        loop.run(engines[name].models())
    return engines[name]


def _build(name: str, request: pytest.FixtureRequest) -> Engine:
    from agentroll.engines.pool import PoolEngine
    from agentroll.engines.vllm_server import VLLMServerEngine

    if name == "embedded":
        return _Unclosable(request.getfixturevalue("embedded"))  # the session fixture closes it
    servers = request.getfixturevalue("vllm_servers")
    if name == "vllm-generate":
        return VLLMServerEngine(servers[0].url, api="generate")
    return PoolEngine([VLLMServerEngine(s.url) for s in servers])


class _Unclosable:
    """Shares the session's embedded engine without letting this suite shut it down."""

    def __init__(self, inner: Any):
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def max_model_len(self) -> int | None:
        return self._inner.max_model_len

    async def aclose(self) -> None:
        pass


def prompt(tokenizer: Any, text: str = "Name three colours of the rainbow.") -> list[int]:
    messages = [{"role": "user", "content": text}]
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))


def test_returned_ids_decode_to_the_returned_text(engine: Engine, loop: Any, tokenizer: Any) -> None:
    c = loop.run(engine.generate(prompt(tokenizer), SamplingParams(temperature=0.0, max_tokens=24)))
    assert c.token_ids and all(0 <= t < len(tokenizer) for t in c.token_ids)
    assert c.token_exact
    assert c.prompt_tokens == len(prompt(tokenizer))
    if c.meta.get("text") is not None:  # the token-only endpoint returns no text to compare
        assert tokenizer.decode(c.token_ids, skip_special_tokens=True) == c.meta["text"]


def test_every_engine_samples_the_same_greedy_tokens(engine: Engine, loop: Any, tokenizer: Any, embedded: Any) -> None:
    sp = SamplingParams(temperature=0.0, max_tokens=10, logprobs=1)
    mine = loop.run(engine.generate(prompt(tokenizer), sp))
    reference = loop.run(embedded.generate(prompt(tokenizer), sp))
    assert mine.token_ids == reference.token_ids
    assert max(abs(a - b) for a, b in zip(mine.logprobs, reference.logprobs, strict=True)) < TOLERANCE


def test_logprobs_are_finite_and_aligned(engine: Engine, loop: Any, tokenizer: Any) -> None:
    sp = SamplingParams(temperature=1.0, max_tokens=10, seed=7)
    c = loop.run(engine.generate(prompt(tokenizer), sp))
    assert c.logprobs is not None and len(c.logprobs) == len(c.token_ids)
    assert all(math.isfinite(x) and x <= 0.0 for x in c.logprobs)
    assert c.top_logprobs is None  # not asked for


def test_sampled_logprobs_match_teacher_forced_at_fp32(engine: Engine, loop: Any, tokenizer: Any) -> None:
    assert isinstance(engine, PromptScorer)
    ids = prompt(tokenizer, "Write one sentence about the sea.")
    c = loop.run(engine.generate(ids, SamplingParams(temperature=1.0, max_tokens=16, seed=11), session_id="tf"))
    check = loop.run(check_logprobs(engine, ids, c, session_id="tf"))
    assert len(check.teacher_forced) == len(c.token_ids)
    assert check.max_delta <= TOLERANCE, check


def test_top_k_holds_the_sampled_token_whenever_its_rank_allows(engine: Engine, loop: Any, tokenizer: Any) -> None:
    k = 5
    sp = SamplingParams(temperature=1.0, max_tokens=12, seed=3, logprobs=k)
    c = loop.run(engine.generate(prompt(tokenizer), sp))
    assert c.top_logprobs is not None and len(c.top_logprobs) == len(c.token_ids)
    for tid, lp, top in zip(c.token_ids, c.logprobs, c.top_logprobs, strict=True):
        assert len(top) == k
        assert [x[1] for x in top] == sorted((x[1] for x in top), reverse=True)  # best first
        if lp > top[-1][1] + 1e-6:  # strictly better than the k-th: it must be listed
            assert tid in {t for t, _ in top}
        if tid in dict(top):
            assert abs(dict(top)[tid] - lp) < 1e-5
    # The k best are the k best: asking for k+1 only appends one entry per position.
    wider = loop.run(engine.generate(prompt(tokenizer), sp.model_copy(update={"logprobs": k + 1})))
    assert wider.token_ids == c.token_ids
    for top, top_wider in zip(c.top_logprobs, wider.top_logprobs, strict=True):
        assert [t for t, _ in top] == [t for t, _ in top_wider[:k]]


def test_seeded_sampling_is_reproducible(engine: Engine, loop: Any, tokenizer: Any) -> None:
    sp = SamplingParams(temperature=1.0, max_tokens=8, seed=1234)
    a, b = (loop.run(engine.generate(prompt(tokenizer), sp)) for _ in range(2))
    assert a.token_ids == b.token_ids
    other = loop.run(engine.generate(prompt(tokenizer), sp.model_copy(update={"seed": 99})))
    assert other.token_ids != a.token_ids  # the seed is honoured, not ignored


def test_max_tokens_ends_with_length_and_ignore_eos_runs_to_it(engine: Engine, loop: Any, tokenizer: Any) -> None:
    c = loop.run(engine.generate(prompt(tokenizer), SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True)))
    assert len(c.token_ids) == 20 and c.finish_reason == "length"


def test_stop_token_ends_the_turn_with_stop(engine: Engine, loop: Any, tokenizer: Any) -> None:
    c = loop.run(engine.generate(prompt(tokenizer), SamplingParams(temperature=0.0, max_tokens=200)))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert c.finish_reason == "stop" and c.token_ids[-1] == im_end  # the EOS is kept: it is trained on


def test_context_overflow_is_refused_before_sending(engine: Engine, loop: Any) -> None:
    assert engine.max_model_len == 2048
    with pytest.raises(ContextOverflow):
        loop.run(engine.generate([1] * 2000, SamplingParams(max_tokens=100)))


def test_prompt_cache_hits_are_reported(engine: Engine, loop: Any, tokenizer: Any) -> None:
    ids = prompt(tokenizer, "Tell me about caching. " * 40)
    sp = SamplingParams(temperature=0.0, max_tokens=2)
    loop.run(engine.generate(ids, sp, session_id="cache"))
    again = loop.run(engine.generate(ids, sp, session_id="cache"))
    assert again.cached_prompt_tokens is not None and again.cached_prompt_tokens >= len(ids) // 2


def test_timeout_raises_engine_timeout(engine: Engine, loop: Any, tokenizer: Any) -> None:
    sp = SamplingParams(temperature=0.0, max_tokens=1500, ignore_eos=True)
    started = time.monotonic()
    with pytest.raises(EngineTimeout):
        loop.run(engine.generate(prompt(tokenizer), sp, timeout=0.5))
    assert time.monotonic() - started < 10


def test_cancelling_the_task_aborts_the_request(engine: Engine, loop: Any, tokenizer: Any, request: Any) -> None:
    sp = SamplingParams(temperature=0.0, max_tokens=1500, ignore_eos=True)

    async def start_then_cancel() -> None:
        task = asyncio.ensure_future(engine.generate(prompt(tokenizer), sp))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    loop.run(start_then_cancel())
    # The engine must stop working on it: nothing left running shortly after.
    deadline = time.monotonic() + 10
    while _running_requests(engine, request) > 0:
        assert time.monotonic() < deadline, "the cancelled request kept running"
        time.sleep(0.2)


def _running_requests(engine: Any, request: Any) -> int:
    if hasattr(engine, "_inner"):  # embedded: ask the AsyncLLM's output processor
        return engine._inner._shared.llm.output_processor.get_num_unfinished_requests()
    total = 0
    for s in request.getfixturevalue("vllm_servers"):
        with urllib.request.urlopen(s.url + "/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(("vllm:num_requests_running{", "vllm:num_requests_waiting{")):
                    total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_stream_grows_token_by_token_and_ends_with_what_generate_returns(
    engine: Engine, loop: Any, tokenizer: Any, request: Any
) -> None:
    from agentroll.engines.base import stream_completion

    sp = SamplingParams(temperature=1.0, max_tokens=16, seed=11, logprobs=2)

    async def collect() -> list[Any]:
        return [c async for c in stream_completion(engine, prompt(tokenizer), sp)]

    snapshots = loop.run(collect())
    whole = loop.run(engine.generate(prompt(tokenizer), sp))
    if request.node.callspec.params["engine"] != "pool":  # a pool answers in one piece
        assert len(snapshots) > 1
    for before, after in itertools.pairwise(snapshots):
        assert after.token_ids[: len(before.token_ids)] == before.token_ids
        assert before.finish_reason is None
    last = snapshots[-1]
    assert last.token_ids == whole.token_ids and last.finish_reason == whole.finish_reason
    assert max(abs(a - b) for a, b in zip(last.logprobs, whole.logprobs, strict=True)) < TOLERANCE
    assert [[t for t, _ in row] for row in last.top_logprobs] == [[t for t, _ in row] for row in whole.top_logprobs]


def test_closing_a_stream_early_aborts_the_request(engine: Engine, loop: Any, tokenizer: Any, request: Any) -> None:
    from agentroll.engines.base import stream_completion

    if request.node.callspec.params["engine"] == "pool":
        pytest.skip("a pool answers in one piece: nothing to close early")
    sp = SamplingParams(temperature=0.0, max_tokens=1500, ignore_eos=True)

    async def read_three_then_close() -> int:
        stream = stream_completion(engine, prompt(tokenizer), sp)
        async for c in stream:
            if len(c.token_ids) >= 3:
                break
        await stream.aclose()
        return len(c.token_ids)

    assert loop.run(read_three_then_close()) < 1500
    deadline = time.monotonic() + 10
    while _running_requests(engine, request) > 0:
        assert time.monotonic() < deadline, "the closed stream's request kept running"
        time.sleep(0.2)


def test_json_schema_constrains_the_output(engine: Engine, loop: Any, tokenizer: Any) -> None:
    import json

    import jsonschema

    schema = {
        "type": "object",
        "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}, "count": {"type": "integer"}},
        "required": ["colour", "count"],
        "additionalProperties": False,
    }
    sp = SamplingParams(temperature=1.0, max_tokens=48, seed=3, json_schema=schema)
    c = loop.run(engine.generate(prompt(tokenizer, "Pick a colour and a number."), sp))
    assert c.finish_reason == "stop"
    jsonschema.validate(json.loads(tokenizer.decode(c.token_ids, skip_special_tokens=True)), schema)


@pytest.fixture(scope="session")
def hf_reference(model_dir: Any) -> Any:
    from agentroll.engines.hf_reference import HFReference

    return HFReference(model_dir)


# (temperature, top_p, top_k, min_p): the convention a trainer's recomputation must reproduce.
SAMPLINGS = [(1.0, 1.0, -1, 0.0), (0.7, 1.0, -1, 0.0), (0.7, 0.9, -1, 0.0), (0.5, 1.0, -1, 0.0), (0.5, 0.8, 20, 0.05)]


@pytest.mark.parametrize(("temperature", "top_p", "top_k", "min_p"), SAMPLINGS)
def test_logprobs_are_of_the_distribution_the_tokens_were_sampled_from(
    engine: Engine, loop: Any, tokenizer: Any, hf_reference: Any, temperature: float, top_p: float, top_k: int,
    min_p: float,
) -> None:  # fmt: skip
    """Recomputed by transformers (logits / T, then vLLM's truncations), not by the engine that sampled them."""
    from agentroll.agent.records import logprobs_convention

    sp = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p, max_tokens=40, seed=5)
    convention = {**logprobs_convention(sp), "mode": "processed"}
    deltas, raw_gap, at_boundary = [], 0.0, 0
    for text in ("Write one sentence about the sea.", "List four animals.", "What is 12 times 7?"):
        ids = prompt(tokenizer, text)
        c = loop.run(engine.generate(ids, sp))
        assert c.meta["logprobs_mode"] == "processed"
        seq = [*ids, *c.token_ids]
        ref = hf_reference.score(seq, list(range(len(ids), len(seq))), convention)
        for lp, r, edge, raw in zip(c.logprobs, ref.logprobs, ref.at_boundary, ref.raw_logprobs, strict=True):
            if abs(lp - r) > TOLERANCE:
                assert edge, (lp, r)  # only a truncation boundary may differ
            deltas.append(abs(lp - r))
            at_boundary += edge
            raw_gap = max(raw_gap, abs(lp - raw))
    assert sum(d <= TOLERANCE for d in deltas) >= 0.999 * len(deltas), max(deltas)
    if (temperature, top_p, top_k, min_p) != (1.0, 1.0, -1, 0.0):
        assert raw_gap > 0.01  # the raw (T=1) logprobs would have failed this test: it can tell them apart


def test_a_vllm_server_with_raw_logprobs_is_found_out(loop: Any, model_dir: Any, tokenizer: Any) -> None:
    """vLLM's default --logprobs-mode: the engine measures it and every Completion says so (and verify refuses)."""
    from agentroll.engines.launch import start_vllm_server
    from agentroll.engines.vllm_server import VLLMServerEngine

    server = start_vllm_server(model_dir, kv_cache_gib=1, logprobs_mode="raw_logprobs")
    engine = VLLMServerEngine(server.url)
    try:
        loop.run(engine.models())
        assert engine.logprobs_mode == "raw"
        c = loop.run(engine.generate(prompt(tokenizer), SamplingParams(temperature=0.7, max_tokens=4)))
        assert c.meta["logprobs_mode"] == "raw"
    finally:
        loop.run(engine.aclose())
        server.stop()
