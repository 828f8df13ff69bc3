"""A vLLM server over HTTP, token-in/token-out.

Prefers `POST /inference/v1/generate` (integer token IDs in and out; served with
`--enable-scale-out`); on a 404 falls back, for good, to `/v1/completions` with a token-ID
prompt and `return_token_ids`. Either way the Completion's IDs are the server's own sampled IDs.
Pass `--enable-prompt-tokens-details` to the server to get prefix-cache hits reported.

Logprobs: the server's `--logprobs-mode` decides which distribution they are of; vLLM's default,
`raw_logprobs`, is the model's at temperature 1, not the one the tokens were sampled from. The engine
finds out on its first call (two one-token probes at different temperatures), records it in every Completion's
`meta["logprobs_mode"]`, and warns once when it is raw: start the server with
`--logprobs-mode processed_logprobs` (engines.launch does).

Weights: `update_weights` drives vLLM's RL API on the server (needs VLLM_SERVER_DEV_MODE=1):
`/pause?mode=...`, `/collective_rpc` of agentroll's reload (engines/vllm_worker.py: the server must be started
with `--worker-extension-cls agentroll.engines.vllm_worker.AgentrollWorker`, as engines.launch does) from a
checkpoint folder the server can read, `/update_weight_version`, `/reset_prefix_cache`, `/resume`;
`weight_checksums` is agentroll's digest of the weights as the workers compute with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from agentroll.engines import vllm_worker
from agentroll.engines.base import PROCESSED, RAW, UNKNOWN, check_context, normalize_finish_reason
from agentroll.engines.http import MISSING, EndpointMissing, RetryPolicy, ServerEngine
from agentroll.engines.weights import (
    Inflight,
    PauseMode,
    WeightSource,
    WeightUpdate,
    check_mode,
    checkpoint_dir,
    parse_version,
    reload_in_place,
    spans_to_starts,
)
from agentroll.errors import ConfigError, EngineError
from agentroll.trajectory import Completion, TopK
from agentroll.types import SamplingParams

GENERATE = "/inference/v1/generate"
COMPLETIONS = "/v1/completions"
log = logging.getLogger(__name__)


class VLLMServerEngine(ServerEngine):
    """Engine for one vLLM server at `base_url` (http://HOST:PORT)."""

    name = "vllm"

    def __init__(self, base_url: str, *, retry: RetryPolicy | None = None, api: str = "auto"):
        super().__init__(base_url, retry=retry)
        self._api = api  # "auto" | "generate" | "completions"
        self.logprobs_mode: str | None = None  # found on the first call
        self._version = 0
        self._inflight = Inflight()
        self._discovery = asyncio.Lock()

    async def models(self) -> list[str]:
        body = await self.http.get_json("/v1/models")
        data = body.get("data") or []
        if data:
            self._model = data[0]["id"]
            self._max_model_len = data[0].get("max_model_len") or self._max_model_len
        async with self._discovery:  # once, however many first calls arrive together
            if self.logprobs_mode is None:
                self.logprobs_mode = await self._find_logprobs_mode()
        return [m["id"] for m in data]

    async def _find_logprobs_mode(self) -> str:
        """The server's --logprobs-mode, measured (raw logprobs do not move with the temperature; processed
        ones do): two one-token requests, on any server. Its weight version too, where it serves one."""
        version = await self.http.request("GET", "/weight_info", None, timeout=10, missing_ok=True)
        if version is not MISSING:
            self._version = parse_version(version.get("weight_version"))
        mode = await self._probe_logprobs_mode()
        found = {"processed_logprobs": PROCESSED, "raw_logprobs": RAW}.get(mode, UNKNOWN)
        if found != PROCESSED:
            log.warning(
                "%s: logprobs are %s, not those of the sampling distribution; for RL start the server with "
                "--logprobs-mode processed_logprobs",
                self.base_url, found,
            )  # fmt: skip
        return found

    async def _probe_logprobs_mode(self) -> str:
        prompt = [1, 2, 3, 4, 5, 6, 7, 8]
        rows = []
        for temperature in (0.5, 1.0):
            sp = {"max_tokens": 1, "temperature": temperature, "logprobs": 5, "seed": 0}
            body = await self.http.post_json(
                GENERATE, {"token_ids": prompt, "sampling_params": sp}, timeout=60, missing_ok=True
            )
            if body is MISSING:
                return ""
            content = (body["choices"][0].get("logprobs") or {}).get("content") or [{}]
            rows.append({int(t["token_id"]): float(t["logprob"]) for t in content[0].get("top_logprobs", [])})
        common = rows[0].keys() & rows[1].keys()
        if not common:
            return ""
        moved = max(abs(rows[0][t] - rows[1][t]) for t in common)
        return "processed_logprobs" if moved > 1e-3 else "raw_logprobs"

    @property
    def model_dir(self) -> str | None:
        """The folder the server was started on, where it is one on this machine (known after `models()`)."""
        return self._model if self._model and Path(self._model).is_dir() else None

    @property
    def policy_version(self) -> int:
        return self._version

    async def pause(self, mode: PauseMode = "wait") -> None:
        if check_mode(mode) == "abort":
            self._inflight.preempt_all()
        await self._rl("POST", f"/pause?mode={mode}")

    async def resume(self) -> None:
        await self._rl("POST", "/resume")

    async def update_weights(self, source: WeightSource, *, version: int, mode: PauseMode = "wait") -> WeightUpdate:
        """Reload the server's weights from `source` (a folder it can read) as policy `version`."""
        # The server's label is the truth (another client, e.g. a pool, may have updated it since).
        self._version = parse_version((await self._rl("GET", "/weight_info")).get("weight_version"))
        if version <= self._version:
            raise ConfigError(f"weight version {version}: must be above the current one ({self._version})")
        with checkpoint_dir(source) as path:
            return await reload_in_place(self, path, version, mode, self.base_url)

    async def _reload(self, path: Path, version: int) -> None:
        await self._worker_rpc(vllm_worker.RELOAD, {"weights_path": str(path)})

    async def _reset_prefix_cache(self) -> bool:
        reset = await self._rl("POST", "/reset_prefix_cache?reset_running_requests=true")
        return bool((reset or {}).get("success"))

    async def _label(self, version: int) -> None:
        await self._rl("POST", "/update_weight_version", {"new_version": str(version)})
        self._version = version

    async def weight_checksums(self) -> dict[str, str]:
        """A digest of every parameter as the server's workers compute with it (engines.vllm_worker)."""
        merged: dict[str, str] = {}
        for worker in await self._worker_rpc(vllm_worker.DIGESTS):
            merged.update(worker)
        return merged

    async def _worker_rpc(self, method: str, kwargs: dict[str, str] | None = None) -> list[Any]:
        """One of agentroll's worker methods on every worker of the server (its `/collective_rpc`)."""
        try:
            body = await self._rl("POST", "/collective_rpc", {"method": method, "kwargs": kwargs or {}})
        except EngineError as e:
            if f"has no attribute '{method}'" not in str(e).replace("\\'", "'"):  # vLLM's words for a missing method
                raise
            raise ConfigError(
                f"{self.base_url}: its workers lack agentroll's weight methods; start vLLM with --worker-extension-cls "
                f"{vllm_worker.EXTENSION} (engines.launch.start_vllm_server does): vLLM's plain reload leaves a tied "
                "LM head on its old weights on CPU"
            ) from e
        return list((body or {}).get("results") or [])

    async def _rl(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        body = await self.http.request(method, path, payload, timeout=None, missing_ok=True)
        if body is MISSING:
            raise ConfigError(
                f"{self.base_url}{path}: not served; vLLM's RL endpoints need the server started with "
                "VLLM_SERVER_DEV_MODE=1 (engines.launch.start_vllm_server does)"
            )
        return body

    async def generate(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> Completion:
        if self._model is None:
            await self.models()
        check_context(len(prompt_ids), sampling, self._max_model_len)
        rid = request_id or uuid.uuid4().hex
        started = time.monotonic()
        with self._inflight.track(rid, self._version):
            return await self._generate(prompt_ids, sampling, rid, timeout, started)

    async def _generate(
        self, prompt_ids: Sequence[int], sampling: SamplingParams, rid: str, timeout: float | None, started: float
    ) -> Completion:
        try:
            if self._api != "completions":
                body = await self.http.post_json(
                    GENERATE, generate_payload(prompt_ids, sampling, rid), timeout=timeout, missing_ok=True
                )
                if body is not MISSING:
                    self._api = "generate"
                    return self._finish(parse_generate(body, sampling.logprobs), rid, GENERATE, started)
                self._api = "completions"  # an older server or one without --enable-scale-out
            payload = completions_payload(self._model or "", prompt_ids, sampling, rid)
            body = await self.http.post_json(COMPLETIONS, payload, timeout=timeout)
            return self._finish(parse_completions(body, sampling.logprobs), rid, COMPLETIONS, started)
        except asyncio.CancelledError:
            # The dropped connection already makes vLLM abort; say so explicitly as well.
            if self._api == "generate":
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._abort(rid))
            raise

    async def generate_stream(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> AsyncIterator[Completion]:
        """Live tokens from `/inference/v1/generate` with `stream: true` (see engines.base.StreamingEngine).

        A server without that endpoint answers through `generate` in one piece."""
        if self._model is None:
            await self.models()
        check_context(len(prompt_ids), sampling, self._max_model_len)
        rid = request_id or uuid.uuid4().hex
        if self._api != "completions":
            started, state = time.monotonic(), StreamState(sampling.logprobs)
            payload = {**generate_payload(prompt_ids, sampling, rid), "stream": True}
            payload["stream_options"] = {"include_usage": True}
            try:
                with self._inflight.track(rid, self._version):
                    async for event in self.http.stream_events(GENERATE, payload, timeout=timeout):
                        if state.add(event) and state.finish_reason is None:
                            yield self._finish(state.completion(), rid, GENERATE, started)
                    self._api = "generate"
                    yield self._finish(state.completion(final=True), rid, GENERATE, started)
                return
            except EndpointMissing:
                self._api = "completions"
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._abort(rid))
                raise
        yield await self.generate(prompt_ids, sampling, request_id=rid, timeout=timeout, session_id=session_id)

    def _finish(self, c: Completion, rid: str, endpoint: str, started: float) -> Completion:
        c.meta.update(engine=self.name, server=self.base_url, endpoint=endpoint, request_id=rid)
        c.meta["logprobs_mode"] = self.logprobs_mode or UNKNOWN
        c.meta["latency_s"] = round(time.monotonic() - started, 6)
        self._inflight.stamp(c, rid)
        return c

    async def _abort(self, rid: str) -> None:
        await self.http.post_json(
            "/inference/v1/abort_requests", {"request_ids": [f"generate-tokens-{rid}"]}, timeout=2
        )

    async def prompt_logprobs(self, token_ids: Sequence[int], *, session_id: str | None = None) -> list[float | None]:
        """Teacher-forced logprobs of `token_ids` (one forward pass, fp32 if the server runs fp32)."""
        if self._model is None:
            await self.models()
        sp = {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0, "detokenize": False}
        body = MISSING
        if self._api != "completions":
            payload = {"token_ids": list(token_ids), "sampling_params": sp}
            body = await self.http.post_json(GENERATE, payload, timeout=120, missing_ok=True)
        if body is MISSING:
            payload = {"model": self._model, "prompt": list(token_ids), "max_tokens": 1, "prompt_logprobs": 0}
            body = await self.http.post_json(COMPLETIONS, payload, timeout=120)
            rows = body["choices"][0].get("prompt_logprobs")
        else:
            rows = body.get("prompt_logprobs")
        if rows is None:
            raise EngineError(f"{self.base_url}: server returned no prompt_logprobs")
        return pick_prompt_logprobs(rows, token_ids)


def sampling_dict(s: SamplingParams) -> dict[str, Any]:
    """vLLM SamplingParams fields; `logprobs=0` still returns the sampled token's logprob."""
    d: dict[str, Any] = {
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k,
        "min_p": s.min_p,
        "max_tokens": s.max_tokens,
        "repetition_penalty": s.repetition_penalty,
        "logprobs": s.logprobs,
        "ignore_eos": s.ignore_eos,
    }
    if s.stop:
        d["stop"] = list(s.stop)
    if s.stop_token_ids:
        d["stop_token_ids"] = list(s.stop_token_ids)
    if s.seed is not None:
        d["seed"] = s.seed
    if s.json_schema is not None:
        d["structured_outputs"] = {"json": s.json_schema}
    if s.structural_tag is not None:
        d["structured_outputs"] = {"structural_tag": json.dumps(s.structural_tag)}
    return d


def generate_payload(prompt_ids: Sequence[int], s: SamplingParams, rid: str) -> dict[str, Any]:
    params = sampling_dict(s)
    if s.logprobs > 0:
        # /generate lists the engine's map (sampled token first, then the top-k) cut to k entries,
        # so a sampled token outside the top-k pushes out the k-th best. Ask for one more and keep
        # the k best (vLLM caps logprobs at 20 by default).
        params["logprobs"] = min(s.logprobs + 1, 20)
    return {"request_id": rid, "token_ids": list(prompt_ids), "sampling_params": params}


class StreamState:
    """Accumulates `/inference/v1/generate` stream events (token deltas) into a cumulative Completion."""

    def __init__(self, k: int):
        self.k = k
        self.ids: list[int] = []
        self.logprobs: list[float] | None = None
        self.top: list[TopK] | None = [] if k > 0 else None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}
        self.versions: list[tuple[int, int]] | None = None  # on the final chunk

    def add(self, event: dict[str, Any]) -> bool:
        """Take one event; True when it carried tokens or the finish reason."""
        if event.get("usage"):
            self.usage = _usage(event)
        if not event.get("choices"):
            return False
        choice = event["choices"][0]
        self.ids.extend(int(t) for t in choice.get("token_ids") or ())
        content = (choice.get("logprobs") or {}).get("content")
        if content is not None:
            logprobs, top = _content_logprobs(content, self.k)
            self.logprobs = (self.logprobs or []) + logprobs
            if self.top is not None:
                self.top.extend(top or ())
        if choice.get("finish_reason") is not None:
            self.finish_reason = normalize_finish_reason(choice["finish_reason"])
        self.versions = spans_to_starts(choice.get("weight_versions")) or self.versions
        return True

    def completion(self, *, final: bool = False) -> Completion:
        if final and self.finish_reason is None:
            raise EngineError("the event stream ended without a finish reason")
        top = list(self.top) if self.top is not None and self.logprobs is not None else None
        logprobs = list(self.logprobs) if self.logprobs is not None else None
        c = Completion(list(self.ids), logprobs, top, self.finish_reason if final else None, **self.usage)
        c.policy_versions = self.versions if final else None
        return c


def completions_payload(model: str, prompt_ids: Sequence[int], s: SamplingParams, rid: str) -> dict[str, Any]:
    d = sampling_dict(s)
    d.update(model=model, prompt=list(prompt_ids), request_id=rid)
    d.update(return_token_ids=True, return_tokens_as_token_ids=True)
    return d


def parse_generate(body: dict[str, Any], k: int) -> Completion:
    """`/inference/v1/generate` response -> Completion (logprobs.content[i] = {token_id, logprob, top_logprobs})."""
    choice = body["choices"][0]
    ids = [int(t) for t in choice["token_ids"]]
    content = (choice.get("logprobs") or {}).get("content")
    logprobs, top = _content_logprobs(content, k) if content is not None else (None, None)
    c = Completion(ids, logprobs, top, normalize_finish_reason(choice.get("finish_reason")), **_usage(body))
    c.policy_versions = spans_to_starts(choice.get("weight_versions"))
    return c


def _content_logprobs(content: list[dict[str, Any]], k: int) -> tuple[list[float], list[TopK] | None]:
    """`logprobs.content` entries -> the sampled tokens' logprobs, and the k best per token (k > 0)."""
    logprobs = [float(e["logprob"]) for e in content]
    if k <= 0:
        return logprobs, None
    pairs = ([(int(t["token_id"]), float(t["logprob"])) for t in e["top_logprobs"]] for e in content)
    return logprobs, [_best_first(p, k) for p in pairs]


def parse_completions(body: dict[str, Any], k: int) -> Completion:
    """`/v1/completions` response with return_token_ids + return_tokens_as_token_ids -> Completion."""
    choice = body["choices"][0]
    if choice.get("token_ids") is None:
        raise EngineError("/v1/completions returned no token_ids (a vLLM older than return_token_ids?)")
    ids = [int(t) for t in choice["token_ids"]]
    lp = choice.get("logprobs") or {}
    logprobs = [float(x) for x in lp["token_logprobs"]] if lp.get("token_logprobs") is not None else None
    top = None
    if k > 0 and lp.get("top_logprobs") is not None:
        top = [_best_first([(_token_id(t), float(v)) for t, v in row.items()], k) for row in lp["top_logprobs"]]
    c = Completion(ids, logprobs, top, normalize_finish_reason(choice.get("finish_reason")), **_usage(body))
    c.meta["text"] = choice.get("text")
    return c


def pick_prompt_logprobs(rows: list[dict[str, Any] | None], token_ids: Sequence[int]) -> list[float | None]:
    """vLLM prompt_logprobs rows ({"<id>": {"logprob": x, ...}}) -> the logprob of each actual token."""
    out: list[float | None] = []
    for row, tid in zip(rows, token_ids, strict=True):
        if row is None:
            out.append(None)
            continue
        entry = row.get(str(tid), row.get(tid)) if isinstance(row, dict) else None
        if entry is None:
            raise EngineError(f"prompt_logprobs row lacks the actual token {tid}")
        out.append(float(entry["logprob"] if isinstance(entry, dict) else entry))
    return out


def _usage(body: dict[str, Any]) -> dict[str, Any]:
    usage = body.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return {"prompt_tokens": usage.get("prompt_tokens"), "cached_prompt_tokens": details.get("cached_tokens")}


def _token_id(key: str) -> int:
    # return_tokens_as_token_ids spells tokens "token_id:123"
    return int(key.rsplit(":", 1)[1]) if key.startswith("token_id:") else int(key)


def _best_first(pairs: list[tuple[int, float]], k: int) -> TopK:
    # vLLM adds the sampled token to the top-k when it ranked lower; keep the k best.
    return sorted(pairs, key=lambda p: -p[1])[:k]
