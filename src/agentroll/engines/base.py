"""The engine protocol: token IDs in, token IDs (+ logprobs) out. No chat templates here.

Every engine takes prompt token IDs and returns a `Completion` whose `token_ids` are exactly
what the model sampled. Failures cross this boundary as `agentroll.errors.EngineError`
subclasses: `EngineUnavailable` (unreachable / dead, after bounded retries), `EngineTimeout`
(the request's deadline passed), `ContextOverflow` (never sent), plain `EngineError` (the
server rejected the request). Cancelling the awaiting task aborts the request server-side
where the engine can.

`Completion.meta` keys set here: `engine`, `request_id`, `latency_s`, `server` / `endpoint` (HTTP
engines), `text` (the engine's own detokenization, when it returned one), `pool_server` and
`pool_retries` (a pool: where the call ran, and each failed server it was re-sent from),
`logprobs_mode` (which distribution the logprobs are of: PROCESSED, RAW or UNKNOWN, below) and
`abort_cause` ("weight_update" for a request a weight update's pause ended).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol, runtime_checkable

from agentroll.engines.weights import PauseMode, WeightSource, WeightUpdate
from agentroll.errors import ConfigError, ContextOverflow, EngineError
from agentroll.trajectory import Completion
from agentroll.types import SamplingParams

# What `Completion.logprobs` are the logprobs of (Completion.meta["logprobs_mode"]):
PROCESSED = "processed"  # the distribution the token was sampled from: penalties, temperature, min-p, top-k, top-p
# (and a grammar's mask) applied, renormalised: what a trainer's importance ratio needs (vLLM's processed_logprobs)
RAW = "raw"  # the model's own distribution (temperature 1, nothing truncated): vLLM's default raw_logprobs
UNKNOWN = "unknown"  # the server does not say which
LOGPROBS_MODES = (PROCESSED, RAW, UNKNOWN)


def check_logprobs_mode(mode: str) -> str:
    if mode not in LOGPROBS_MODES:
        raise ConfigError(f"logprobs_mode {mode!r}: expected one of {', '.join(LOGPROBS_MODES)}")
    return mode


@runtime_checkable
class Engine(Protocol):
    """Token-in/token-out generation.

    `session_id` names the episode a call belongs to: a pool keeps all calls of one session on
    one server (its prefix cache holds the conversation); single engines may ignore it.
    `max_model_len` is None until the engine knows it (after `models()` or a first generate).
    """

    name: str

    async def generate(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> Completion: ...

    async def health(self) -> bool: ...

    async def models(self) -> list[str]: ...

    @property
    def max_model_len(self) -> int | None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class PromptScorer(Protocol):
    """Optional capability: teacher-forced logprobs of a whole token sequence.

    Returns one entry per token: None for the first (nothing conditions it), else
    log p(token_i | tokens_<i) from a forward pass over the sequence. This is what a trainer
    recomputes, so sampled logprobs can be checked against it (see `engines.verify`).
    """

    async def prompt_logprobs(
        self, token_ids: Sequence[int], *, session_id: str | None = None
    ) -> list[float | None]: ...


@runtime_checkable
class StreamingEngine(Protocol):
    """Optional capability: the same generation as `generate`, seen while it happens.

    Yields cumulative Completions: each holds every token sampled so far (with logprobs) and
    `finish_reason` None, except the last, which is exactly what `generate` would have returned.
    Closing the iterator early aborts the request.
    """

    def generate_stream(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> AsyncIterator[Completion]: ...


@runtime_checkable
class WeightUpdatable(Protocol):
    """Optional capability: new policy weights without a restart (see engines.weights).

    `update_weights` pauses generation (`mode`: abort / wait / keep), loads `source` in place, labels
    the weights `version` (an integer that only grows, e.g. the trainer's step) and resumes. From then
    on every sampled token's `policy_versions` entry says `version`. `policy_version` is the current one.
    """

    @property
    def policy_version(self) -> int: ...

    async def update_weights(self, source: WeightSource, *, version: int, mode: PauseMode = "wait") -> WeightUpdate: ...

    async def pause(self, mode: PauseMode = "wait") -> None: ...

    async def resume(self) -> None: ...


async def stream_completion(engine: Any, prompt_ids: Sequence[int], sampling: SamplingParams, **kw: Any):
    """`engine.generate_stream` where the engine has one; else one final Completion from `generate`."""
    if isinstance(engine, StreamingEngine):
        async for c in engine.generate_stream(prompt_ids, sampling, **kw):
            yield c
    else:
        yield await engine.generate(prompt_ids, sampling, **kw)


def check_context(prompt_len: int, sampling: SamplingParams, max_model_len: int | None) -> None:
    """Raise ContextOverflow before sending a request that cannot fit the context window."""
    if max_model_len is not None and prompt_len + sampling.max_tokens > max_model_len:
        raise ContextOverflow(
            f"prompt ({prompt_len} tokens) + max_tokens ({sampling.max_tokens}) > max_model_len ({max_model_len})"
        )


def normalize_finish_reason(reason: str | None) -> str:
    """Map engine-specific finish reasons onto "stop" / "length" / "abort"."""
    if reason in ("stop", "length", "abort"):
        return reason
    if reason in ("eos", "stop_token", "stop_string", "tool_calls"):
        return "stop"
    if reason in ("max_tokens", "max_length"):
        return "length"
    return "abort"  # None, "error", "cancelled": the generation did not end on its own


def abort_reason(c: Completion) -> str | None:
    """Why the engine cut a generation off itself (finish reason "abort"); None for one that ended on its own."""
    if c.finish_reason != "abort":
        return None
    return f"the engine aborted the generation: {c.meta.get('abort_message') or 'no reason given'}"


def check_not_aborted(c: Completion) -> Completion:
    """`c`, or EngineError if the engine aborted it: a cut-off answer is an engine failure, not an answer."""
    reason = abort_reason(c)
    if reason is not None:
        raise EngineError(reason)
    return c
