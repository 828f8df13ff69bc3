"""An SGLang server over its native `/generate` API, token-in/token-out.

Built to SGLang's documented protocol; it has NOT been run against a real SGLang server (SGLang
needs CUDA kernels and a torch build that this project's machines do not have).

Request: `{"input_ids": [...], "sampling_params": {...}, "return_logprob": true,
"top_logprobs_num": k, "rid": id}`. Response: `output_ids`, `text`, and `meta_info` with
`output_token_logprobs` as `[logprob, token_id, text]` entries, `output_top_logprobs` as lists
of such entries per position, `finish_reason: {"type": "stop" | "length" | "abort", ...}`,
`prompt_tokens`, `cached_tokens`. Cancellation posts `/abort_request {"rid": id}`.

Weights (built to SGLang's documented request types, UNVERIFIED: never run against SGLang):
`/pause_generation {"mode": "abort" | "retract"}` (our abort / keep: retracted requests go back to the
queue and recompute after the update), `/update_weights_from_disk {"model_path", "weight_version",
"flush_cache": true}` (which itself waits for requests in flight: our wait), `/continue_generation`.
SGLang reports no per-token weight version here: each Completion gets the version it was sent under.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentroll.engines.base import UNKNOWN, check_context, check_logprobs_mode, normalize_finish_reason
from agentroll.engines.http import RetryPolicy, ServerEngine
from agentroll.engines.weights import (
    Inflight,
    PauseMode,
    WeightSource,
    WeightUpdate,
    check_mode,
    checkpoint_dir,
    reload_in_place,
)
from agentroll.errors import ConfigError, EngineError
from agentroll.trajectory import Completion, TopK
from agentroll.types import SamplingParams

# our pause modes -> SGLang's /pause_generation modes (None: no pause; the update itself drains in-flight requests)
PAUSE_MODES: dict[str, str | None] = {"abort": "abort", "keep": "retract", "wait": None}


class SGLangEngine(ServerEngine):
    name = "sglang"

    def __init__(self, base_url: str, *, retry: RetryPolicy | None = None, logprobs_mode: str = UNKNOWN):
        """`logprobs_mode`: what the server's logprobs are of, as its operator knows it (agentroll has not run
        SGLang: "unknown" unless declared, e.g. `sglang://HOST:PORT?logprobs_mode=processed`)."""
        super().__init__(base_url, retry=retry)
        self.logprobs_mode = check_logprobs_mode(logprobs_mode)
        self._version = 0
        self._inflight = Inflight()
        self._paused = False

    @property
    def policy_version(self) -> int:
        return self._version

    async def pause(self, mode: PauseMode = "wait") -> None:
        if (sglang_mode := PAUSE_MODES[check_mode(mode)]) is None:
            return
        if mode == "abort":
            self._inflight.preempt_all()
        await self.http.post_json("/pause_generation", {"mode": sglang_mode}, timeout=None)
        self._paused = True

    async def resume(self) -> None:
        if self._paused:
            await self.http.post_json("/continue_generation", {}, timeout=None)
            self._paused = False

    async def update_weights(self, source: WeightSource, *, version: int, mode: PauseMode = "wait") -> WeightUpdate:
        if version <= self._version:
            raise ConfigError(f"weight version {version}: must be above the current one ({self._version})")
        with checkpoint_dir(source) as path:
            return await reload_in_place(self, path, version, mode, self.base_url)

    async def _reload(self, path: Path, version: int) -> None:
        body = await self.http.post_json("/update_weights_from_disk", update_payload(path, version), timeout=None)
        if not (body or {}).get("success"):
            raise EngineError(f"{self.base_url}: update_weights_from_disk failed: {(body or {}).get('message')}")

    async def _reset_prefix_cache(self) -> bool:
        return True  # update_payload asks SGLang to flush its cache with the update

    async def _label(self, version: int) -> None:
        self._version = version  # SGLang labelled the weights with the update (weight_version)

    async def models(self) -> list[str]:
        info = await self.http.get_json("/get_model_info")
        self._model = info.get("model_path") or self._model
        if self._max_model_len is None:
            server = await self.http.get_json("/get_server_info")
            self._max_model_len = context_length(server)
        return [self._model] if self._model else []

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
            try:
                payload = generate_payload(prompt_ids, sampling, rid)
                body = await self.http.post_json("/generate", payload, timeout=timeout)
            except (asyncio.CancelledError, TimeoutError):
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.http.post_json("/abort_request", {"rid": rid}, timeout=2))
                raise
            c = parse_generate(body, sampling.logprobs)
            c.meta.update(engine=self.name, server=self.base_url, request_id=rid, logprobs_mode=self.logprobs_mode)
            c.meta["latency_s"] = round(time.monotonic() - started, 6)
            self._inflight.stamp(c, rid)
        return c

    async def prompt_logprobs(self, token_ids: Sequence[int], *, session_id: str | None = None) -> list[float | None]:
        """Teacher-forced logprobs via `logprob_start_len: 0` (input_token_logprobs)."""
        payload = {
            "input_ids": list(token_ids),
            "sampling_params": {"max_new_tokens": 1, "temperature": 0.0},
            "return_logprob": True,
            "logprob_start_len": 0,
        }
        body = await self.http.post_json("/generate", payload, timeout=120)
        return parse_input_logprobs(body, token_ids)


def sampling_dict(s: SamplingParams) -> dict[str, Any]:
    d: dict[str, Any] = {
        "max_new_tokens": s.max_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": s.top_k,  # -1: no limit, as in SGLang
        "min_p": s.min_p,
        "repetition_penalty": s.repetition_penalty,
        "ignore_eos": s.ignore_eos,
        "skip_special_tokens": False,
        "no_stop_trim": True,  # keep the stop string's tokens: they were sampled
    }
    if s.stop:
        d["stop"] = list(s.stop)
    if s.stop_token_ids:
        d["stop_token_ids"] = list(s.stop_token_ids)
    if s.seed is not None:
        d["sampling_seed"] = s.seed
    if s.json_schema is not None:  # SGLang's sampling params take both as JSON text (documented; not run here)
        d["json_schema"] = json.dumps(s.json_schema)
    if s.structural_tag is not None:
        d["structural_tag"] = json.dumps(s.structural_tag)
    return d


def generate_payload(prompt_ids: Sequence[int], s: SamplingParams, rid: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "rid": rid,
        "input_ids": list(prompt_ids),
        "sampling_params": sampling_dict(s),
        "return_logprob": True,  # always: logprobs are part of every Completion
        "stream": False,
    }
    if s.logprobs > 0:
        payload["top_logprobs_num"] = s.logprobs
    return payload


def parse_generate(body: dict[str, Any] | list[dict[str, Any]], k: int) -> Completion:
    """Native /generate response -> Completion. The token IDs come from output_token_logprobs."""
    if isinstance(body, list):  # a batch of one
        body = body[0]
    meta = body.get("meta_info") or {}
    entries = meta.get("output_token_logprobs")
    if entries is None:
        raise EngineError("SGLang response has no meta_info.output_token_logprobs (return_logprob not honoured?)")
    ids = [int(e[1]) for e in entries]
    if body.get("output_ids") is not None and [int(t) for t in body["output_ids"]][-len(ids) :] != ids:
        raise EngineError("SGLang output_ids disagree with output_token_logprobs")
    logprobs = [float(e[0]) for e in entries]
    top: list[TopK] | None = None
    if k > 0 and meta.get("output_top_logprobs") is not None:
        top = [
            sorted(((int(e[1]), float(e[0])) for e in row), key=lambda p: -p[1])[:k]
            for row in meta["output_top_logprobs"]
        ]
    finish = meta.get("finish_reason")
    reason = finish.get("type") if isinstance(finish, dict) else finish
    c = Completion(ids, logprobs, top, normalize_finish_reason(reason))
    c.prompt_tokens = meta.get("prompt_tokens")
    c.cached_prompt_tokens = meta.get("cached_tokens")
    c.meta["text"] = body.get("text")
    if isinstance(finish, dict) and finish.get("type") == "abort":
        c.meta["abort_message"] = finish.get("message")
    return c


def parse_input_logprobs(body: dict[str, Any] | list[dict[str, Any]], token_ids: Sequence[int]) -> list[float | None]:
    if isinstance(body, list):
        body = body[0]
    entries = (body.get("meta_info") or {}).get("input_token_logprobs")
    if entries is None or len(entries) != len(token_ids):
        raise EngineError("SGLang returned no input_token_logprobs for every prompt token")
    out: list[float | None] = []
    for e, tid in zip(entries, token_ids, strict=True):
        if int(e[1]) != int(tid):
            raise EngineError(f"SGLang input_token_logprobs token {e[1]} != prompt token {tid}")
        out.append(None if e[0] is None else float(e[0]))
    return out


def context_length(server_info: dict[str, Any]) -> int | None:
    """`/get_server_info` spells the window `context_length` (top level or per scheduler)."""
    if isinstance(server_info.get("context_length"), int):
        return server_info["context_length"]
    for key in ("internal_states", "scheduler_info"):
        states = server_info.get(key)
        for st in states if isinstance(states, list) else [states] if isinstance(states, dict) else []:
            if isinstance(st, dict) and isinstance(st.get("context_length"), int):
                return st["context_length"]
    return None


def update_payload(path: Path, version: int) -> dict[str, Any]:
    """`/update_weights_from_disk` (SGLang's UpdateWeightFromDiskReqInput): reload from `path`, labelled."""
    return {"model_path": str(path), "weight_version": str(version), "flush_cache": True}
