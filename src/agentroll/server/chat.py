"""Chat and text completions: admission, generation (n choices), capture into sessions.

`stream: true` streams tokens as the engine samples them (engines with `generate_stream`: the
embedded engine and vLLM servers; others answer in one piece, then stream). Errors before the
first token are HTTP errors; after it, an OpenAI error event ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import StreamingResponse

from agentroll.engines.base import check_not_aborted, stream_completion
from agentroll.errors import AgentrollError
from agentroll.server.errors import APIError, from_agentroll
from agentroll.server.errors import body as error_body
from agentroll.server.protocol import ChatCompletionRequest
from agentroll.server.requests import ChatCall, chat_call, fitted
from agentroll.server.responses import Choice, before_stop, chat_body, returned_message, sse, usage
from agentroll.server.sessions import Session, SessionStore
from agentroll.server.streaming import Feed, LiveChoice, chunk, event_stream
from agentroll.trajectory import Completion
from agentroll.types import Enforcement, ParseMode, SamplingParams


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
    tool_parse: ParseMode = "lenient"
    tool_choice_enforcement: Enforcement = "guided"
    waiting: int = 0
    _slots: asyncio.Semaphore | None = field(default=None, repr=False)
    _decoded: dict[int, str] = field(default_factory=dict, repr=False)
    _asked_window: bool = field(default=False, repr=False)

    def models_body(self) -> dict[str, Any]:
        card = {"id": self.model_name, "object": "model", "created": 0, "owned_by": "agentroll"}
        if self.engine.max_model_len is not None:
            card["max_model_len"] = self.engine.max_model_len
        return {"object": "list", "data": [card]}

    def check_model(self, model: str) -> None:
        if model != self.model_name:
            raise APIError(404, f"model: no model {model!r}; served: {self.model_name!r}", param="model")

    async def window(self) -> int | None:
        """The engine's context window; an HTTP engine learns it from the server's model list, asked once."""
        if self.engine.max_model_len is None and not self._asked_window:
            self._asked_window = True
            with contextlib.suppress(AgentrollError):
                await self.engine.models()
        return self.engine.max_model_len

    def decode_one(self, token_id: int) -> str:
        """One token's text, for logprob entries (cached: the same IDs come back all the time)."""
        text = self._decoded.get(token_id)
        if text is None:
            text = self._decoded[token_id] = self.renderer.tokenizer.decode([token_id])
        return text

    async def generate(self, prompt: list[int], sampling: SamplingParams, n: int, session_id: str | None) -> list:
        """n completions of one prompt; seeds differ per choice so choices differ when a seed is given."""
        with self.admitted(n):
            try:
                completions = await asyncio.gather(*(self._one(prompt, sampling, i, session_id) for i in range(n)))
                return [check_not_aborted(c) for c in completions]
            except AgentrollError as e:
                raise self.api_error(e, prompt) from e

    def stream(self, prompt: list[int], sampling: SamplingParams, n: int, session_id: str | None) -> Feed:
        """n choices sampling in the background; the feed yields their snapshots. Close it when done."""
        self._admit(n)
        streams = [self._one_stream(prompt, sampling, i, session_id) for i in range(n)]
        return Feed(streams, errors=lambda e: self.api_error(e, prompt), on_close=lambda: self._leave(n))

    @contextlib.contextmanager
    def admitted(self, n: int) -> Iterator[None]:
        self._admit(n)
        try:
            yield
        finally:
            self._leave(n)

    def _admit(self, n: int) -> None:
        """Count n choices as waiting; refuse (429) past the concurrency + queue limit."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrency)
        if n > self.max_concurrency + self.max_queue:  # could never be admitted: not a "retry later"
            raise APIError(400, f"n: at most {self.max_concurrency + self.max_queue} choices here", param="n")
        if self.waiting + n > self.max_concurrency + self.max_queue:
            raise APIError(429, "the engine is saturated; retry later", code="engine_saturated")
        self.waiting += n

    def _leave(self, n: int) -> None:
        self.waiting -= n

    def api_error(self, e: AgentrollError, prompt: list[int]) -> APIError:
        window = self.engine.max_model_len
        return from_agentroll(e, "messages" if window and len(prompt) >= window else "max_tokens")

    async def _one(self, prompt: list[int], sampling: SamplingParams, i: int, session_id: str | None) -> Completion:
        async with self._slots:
            return await self.engine.generate(
                prompt, _choice_seed(sampling, i), timeout=self.timeout_s, session_id=session_id
            )

    async def _one_stream(
        self, prompt: list[int], sampling: SamplingParams, i: int, session_id: str | None
    ) -> AsyncIterator[Completion]:
        async with self._slots:
            kw = {"timeout": self.timeout_s, "session_id": session_id}
            async for c in stream_completion(self.engine, prompt, _choice_seed(sampling, i), **kw):
                yield c


def _choice_seed(sampling: SamplingParams, i: int) -> SamplingParams:
    if i and sampling.seed is not None:
        return sampling.model_copy(update={"seed": (sampling.seed + i) % 2**63})
    return sampling


async def chat_completion(gen: Generator, req: ChatCompletionRequest, session_id: str | None) -> Any:
    gen.check_model(req.model)
    call = chat_call(req, gen.renderer, gen.default_max_tokens, gen.tool_parse, gen.tool_choice_enforcement)
    session = _session(gen, req, session_id)
    rid = f"chatcmpl-{uuid.uuid4().hex}"
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return await _stream_chat(gen, rid, call, req.n, session, include_usage)
    if session is None:
        prompt = [*_render(gen, call), *call.forced]
        choices = await _sample(gen, call, prompt, req.n, None)
        return chat_body(rid, gen.model_name, call, prompt, choices, gen.decode_one)
    async with session.lock:  # calls of one session are stitched in order
        started = time.monotonic()
        plan, prompt = _planned_prompt(gen, session, call)
        choices = await _sample(gen, call, prompt, 1, session.id)
        _record(gen, session, plan, call, choices[0], started)
    return chat_body(rid, gen.model_name, call, prompt, choices, gen.decode_one)


def _session(gen: Generator, req: ChatCompletionRequest, session_id: str | None) -> Session | None:
    if session_id is None:
        return None
    if req.n != 1:
        raise APIError(400, "n: a session records one answer per call; use n=1", param="n")
    session = gen.store.get_or_create(session_id)
    if session is None:
        raise APIError(429, "too many sessions: export and DELETE finished ones", code="too_many_sessions")
    return session


def _record(gen: Generator, session: Session, plan: Any, call: ChatCall, c: Choice, started: float) -> None:
    r = gen.renderer
    guided = call.sampling.structural_tag is not None
    session.commit(r, plan, call.messages, call.tools, call.forced, c.completion, c.parsed, c.returned, started, guided)


def _planned_prompt(gen: Generator, session: Session, call: ChatCall) -> tuple[Any, list[int]]:
    try:
        plan = session.plan(gen.renderer, call.messages, call.tools)
    except AgentrollError as e:
        raise from_agentroll(e, "messages") from e
    return plan, [*session.prompt(plan), *call.forced]


def _render(gen: Generator, call: ChatCall) -> list[int]:
    try:
        return gen.renderer.render(call.messages, call.tools)
    except AgentrollError as e:
        raise from_agentroll(e, "messages") from e


async def _sample(gen: Generator, call: ChatCall, prompt: list[int], n: int, session_id: str | None) -> list[Choice]:
    sampling = fitted(call.sampling, call.max_tokens_given, len(prompt), await gen.window())
    completions = await gen.generate(prompt, sampling, n, session_id)
    choices = []
    for i, c in enumerate(completions):
        parsed = gen.renderer.parse([*call.forced, *c.token_ids], call.tools, mode=call.tool_parse)
        returned, indices = returned_message(parsed, call.parallel_tool_calls)
        choices.append(Choice(i, c, parsed, before_stop(returned, call.sampling.stop), indices))
    return choices


async def _stream_chat(
    gen: Generator, rid: str, call: ChatCall, n: int, session: Session | None, include_usage: bool
) -> StreamingResponse:
    """Start generating; once the first tokens are in (or an HTTP error is raised), stream the rest.

    A session's lock is held until the stream ends: its next call waits for this answer to be recorded.
    An answer the client stopped reading is not recorded."""
    if session is not None:
        await session.lock.acquire()
    feed = None
    try:
        started = time.monotonic()
        plan, prompt = _planned_prompt(gen, session, call) if session else (None, [*_render(gen, call), *call.forced])
        sampling = fitted(call.sampling, call.max_tokens_given, len(prompt), await gen.window())
        feed = gen.stream(prompt, sampling, n, session.id if session else None)
        first = await feed.next()
    except BaseException:
        if feed is not None:
            feed.close()
        if session is not None:
            session.lock.release()
        raise
    turn = _Turn(gen, rid, call, prompt, session, plan, started)

    def cleanup() -> None:
        feed.close()
        if session is not None:
            session.lock.release()

    return event_stream(_chunks(turn, n, first, feed, include_usage), cleanup)


@dataclass(slots=True)
class _Turn:
    """What a streamed call needs once the first tokens are in."""

    gen: Generator
    rid: str
    call: ChatCall
    prompt: list[int]
    session: Session | None
    plan: Any
    started: float


async def _chunks(
    t: _Turn, n: int, first: tuple[int, Completion] | None, feed: Feed, include_usage: bool
) -> AsyncIterator[str]:
    gen, call, model = t.gen, t.call, t.gen.model_name
    live = [LiveChoice(i, call, _stream_parser(gen, call), gen.renderer, gen.decode_one) for i in range(n)]
    done: dict[int, Choice] = {}
    for i in range(n):
        yield sse(chunk(t.rid, model, [{"index": i, "delta": {"role": "assistant", "content": ""}}]))
    item = first
    try:
        while item is not None:
            i, c = item
            if c.finish_reason is None:
                bodies = live[i].update(c)
            else:
                done[i], bodies = live[i].finish(c)
                if call.token_ids:
                    bodies[-1].update(prompt_token_ids=list(t.prompt), token_ids=list(c.token_ids))
            for b in bodies:
                yield sse(chunk(t.rid, model, [b]))
            item = await feed.next()
    except APIError as e:  # the response has started: the error goes in the stream, as OpenAI sends it
        yield sse(error_body(e.status, e.message, e.param, e.code))
        yield sse("[DONE]")
        return
    if t.session is not None:
        _record(gen, t.session, t.plan, call, done[0], t.started)
    if include_usage:
        yield sse(chunk(t.rid, model, [], usage=usage(t.prompt, [done[i] for i in sorted(done)])))
    yield sse("[DONE]")


def _stream_parser(gen: Generator, call: ChatCall) -> Any:
    from agentroll.renderers.toolcalls import get_parser

    fmt = getattr(getattr(gen.renderer, "config", None), "tool_format", None)
    return get_parser(fmt).stream(call.tools, mode=call.tool_parse) if fmt else _PlainStream()


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
