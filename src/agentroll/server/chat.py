"""Chat and text completions: admission, generation (n choices), capture into sessions.

Engines have no token stream yet, so `stream: true` generates the whole answer first and then
streams it token by token through the tool-call stream parser (see responses.py). Clients see
correct OpenAI chunks; they do not see the first token any sooner.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import StreamingResponse

from agentroll.errors import AgentrollError
from agentroll.server.errors import APIError, from_agentroll
from agentroll.server.protocol import ChatCompletionRequest, CompletionRequest
from agentroll.server.requests import ChatCall, chat_call, sampling_params
from agentroll.server.responses import Choice, chat_body, chat_chunks, returned_message, sse, usage
from agentroll.server.sessions import SessionStore
from agentroll.trajectory import Completion
from agentroll.types import SamplingParams


@dataclass(slots=True)
class Generator:
    """What every route shares: the engine, the renderer, the sessions, and admission control."""

    engine: Any
    renderer: Any
    model_name: str
    store: SessionStore
    default_max_tokens: int = 256
    max_concurrency: int = 64
    max_queue: int = 256
    timeout_s: float | None = 300.0
    waiting: int = 0
    _slots: asyncio.Semaphore | None = field(default=None, repr=False)
    _decoded: dict[int, str] = field(default_factory=dict, repr=False)

    def models_body(self) -> dict[str, Any]:
        card = {"id": self.model_name, "object": "model", "created": 0, "owned_by": "agentroll"}
        if self.engine.max_model_len is not None:
            card["max_model_len"] = self.engine.max_model_len
        return {"object": "list", "data": [card]}

    def check_model(self, model: str) -> None:
        if model != self.model_name:
            raise APIError(404, f"model: no model {model!r}; served: {self.model_name!r}", param="model")

    def decode_one(self, token_id: int) -> str:
        """One token's text, for logprob entries (cached: the same IDs come back all the time)."""
        text = self._decoded.get(token_id)
        if text is None:
            text = self._decoded[token_id] = self.renderer.tokenizer.decode([token_id])
        return text

    async def generate(self, prompt: list[int], sampling: SamplingParams, n: int, session_id: str | None) -> list:
        """n completions of one prompt; seeds differ per choice so choices differ when a seed is given."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrency)
        if self.waiting >= self.max_concurrency + self.max_queue:
            raise APIError(429, "the engine is saturated; retry later", code="engine_saturated")
        self.waiting += n
        try:
            return await asyncio.gather(*(self._one(prompt, sampling, i, session_id) for i in range(n)))
        except AgentrollError as e:
            window = self.engine.max_model_len
            raise from_agentroll(e, "messages" if window and len(prompt) >= window else "max_tokens") from e
        finally:
            self.waiting -= n

    async def _one(self, prompt: list[int], sampling: SamplingParams, i: int, session_id: str | None) -> Completion:
        if i and sampling.seed is not None:
            sampling = sampling.model_copy(update={"seed": (sampling.seed + i) % 2**63})
        async with self._slots:
            return await self.engine.generate(prompt, sampling, timeout=self.timeout_s, session_id=session_id)


async def chat_completion(gen: Generator, req: ChatCompletionRequest, session_id: str | None) -> Any:
    gen.check_model(req.model)
    call = chat_call(req, gen.renderer, gen.default_max_tokens)
    if session_id is None:
        prompt = [*_render(gen, call), *call.forced]
        choices = await _sample(gen, call, prompt, req.n, None)
    else:
        if req.n != 1:
            raise APIError(400, "n: a session records one answer per call; use n=1", param="n")
        session = gen.store.get_or_create(session_id)
        if session is None:
            raise APIError(429, "too many sessions: export and DELETE finished ones", code="too_many_sessions")
        async with session.lock:  # calls of one session are stitched in order
            started = time.monotonic()
            try:
                plan = session.plan(gen.renderer, call.messages, call.tools)
            except AgentrollError as e:
                raise from_agentroll(e, "messages") from e
            prompt = [*session.prompt(plan), *call.forced]
            choices = await _sample(gen, call, prompt, 1, session_id)
            c = choices[0]
            session.commit(
                gen.renderer, plan, call.messages, call.tools, call.forced, c.completion, c.parsed, c.returned, started
            )
    rid = f"chatcmpl-{uuid.uuid4().hex}"
    if not req.stream:
        return chat_body(rid, gen.model_name, call, prompt, choices, gen.decode_one)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    return _sse(_chat_stream(gen, rid, call, prompt, choices, include_usage))


def _render(gen: Generator, call: ChatCall) -> list[int]:
    try:
        return gen.renderer.render(call.messages, call.tools)
    except AgentrollError as e:
        raise from_agentroll(e, "messages") from e


async def _sample(gen: Generator, call: ChatCall, prompt: list[int], n: int, session_id: str | None) -> list[Choice]:
    completions = await gen.generate(prompt, call.sampling, n, session_id)
    choices = []
    for i, c in enumerate(completions):
        parsed = gen.renderer.parse([*call.forced, *c.token_ids], call.tools)
        returned, indices = returned_message(parsed, call.parallel_tool_calls)
        choices.append(Choice(i, c, parsed, returned, indices))
    return choices


def _chat_stream(
    gen: Generator, rid: str, call: ChatCall, prompt: list[int], choices: list[Choice], include_usage: bool
) -> Iterator[str]:
    from agentroll.renderers.toolcalls import get_parser

    fmt = getattr(getattr(gen.renderer, "config", None), "tool_format", None)
    for choice in choices:
        parser = get_parser(fmt).stream(call.tools) if fmt else _PlainStream()
        for chunk in chat_chunks(rid, gen.model_name, call, choice, parser, gen.renderer.tokenizer, gen.decode_one):
            yield sse(chunk)
    if include_usage:
        yield sse({"id": rid, "object": "chat.completion.chunk", "model": gen.model_name, "choices": [],
                   "usage": usage(prompt, choices)})  # fmt: skip
    yield sse("[DONE]")


class _PlainStream:
    """Stream parser for renderers whose model cannot call tools: all text is content."""

    def __init__(self) -> None:
        self._buf = ""
        self._sent = 0

    def feed(self, text: str) -> list[Any]:
        from agentroll.renderers.toolcalls import Delta

        self._buf += text
        now = self._buf.strip()
        if len(now) <= self._sent:
            return []
        out, self._sent = [Delta(content=now[self._sent :])], len(now)
        return out

    def flush(self) -> list[Any]:
        return []


def _sse(chunks: Iterator[str]) -> StreamingResponse:
    return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# --- /v1/completions -------------------------------------------------------------------------------


async def text_completion(gen: Generator, req: CompletionRequest) -> Any:
    gen.check_model(req.model)
    if req.echo or req.suffix:
        raise APIError(400, "echo/suffix: not supported", param="echo" if req.echo else "suffix")
    if req.stream:
        raise APIError(400, "stream: not supported on /v1/completions; use chat completions", param="stream")
    prompt = _text_prompt(gen, req.prompt)
    want_lp = req.logprobs is not None or bool(req.return_logprobs)
    sampling = sampling_params(req, gen.renderer, req.max_tokens or 16, req.logprobs or 0)
    completions = await gen.generate(prompt, sampling, req.n, None)
    choices = [_text_choice(gen, i, c, want_lp, req.return_token_ids, prompt) for i, c in enumerate(completions)]
    n_out = sum(len(c.token_ids) for c in completions)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": gen.model_name,
        "choices": choices,
        "usage": {"prompt_tokens": len(prompt), "completion_tokens": n_out, "total_tokens": len(prompt) + n_out},
    }


def _text_prompt(gen: Generator, prompt: str | list[int] | list[str]) -> list[int]:
    if isinstance(prompt, str):
        return gen.renderer.tokenizer.encode(prompt)
    if all(isinstance(p, str) for p in prompt):
        if len(prompt) != 1:
            raise APIError(400, "prompt: one prompt per request (a list of one string)", param="prompt")
        return gen.renderer.tokenizer.encode(prompt[0])
    vocab = len(gen.renderer.tokenizer.hf) if hasattr(gen.renderer.tokenizer, "hf") else None
    if any(t < 0 or (vocab is not None and t >= vocab) for t in prompt):
        raise APIError(400, "prompt: token IDs must be in the vocabulary", param="prompt")
    return list(prompt)


def _text_choice(gen: Generator, i: int, c: Completion, want_lp: bool, ids: bool, prompt: list[int]) -> dict:
    stop = set(gen.renderer.stop_token_ids())
    body_ids = c.token_ids[:-1] if c.token_ids and c.token_ids[-1] in stop else c.token_ids
    text = gen.renderer.tokenizer.decode(body_ids)
    out: dict[str, Any] = {"index": i, "text": text, "finish_reason": c.finish_reason}
    out["logprobs"] = _legacy_logprobs(gen, c) if want_lp else None
    if ids:
        out["prompt_token_ids"], out["token_ids"] = list(prompt), list(c.token_ids)
    return out


def _legacy_logprobs(gen: Generator, c: Completion) -> dict[str, Any]:
    tokens = [gen.decode_one(t) for t in c.token_ids]
    offsets, pos = [], 0
    for t in tokens:
        offsets.append(pos)
        pos += len(t)
    top = [{gen.decode_one(t): max(lp, -9999.0) for t, lp in row} for row in c.top_logprobs or []]
    return {
        "tokens": tokens,
        "token_logprobs": [max(lp, -9999.0) for lp in c.logprobs or []],
        "top_logprobs": top or None,
        "text_offset": offsets,
    }
