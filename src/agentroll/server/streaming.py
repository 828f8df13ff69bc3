"""`stream: true`: engine token snapshots -> OpenAI chat chunks, sent while the model is sampling.

Each choice's tokens are decoded as they arrive, token by token, and fed through the tool-call
format's stream parser, so content and tool-call deltas reach the client the way OpenAI streams
them. When the engine ends the turn the tokens are parsed once more in full, as the non-streamed
path does: that parse is what a session records and what the final chunk reports. Joined, the
deltas equal the returned message.

A call's id is fixed when its name streams; without `parallel_tool_calls` only the first call streams.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import StreamingResponse

from agentroll.engines.base import check_not_aborted
from agentroll.errors import AgentrollError
from agentroll.renderers.incremental import IncrementalDecoder
from agentroll.server.requests import ChatCall
from agentroll.server.responses import (
    Choice,
    before_stop,
    call_errors,
    carrying,
    finish_reason,
    new_call_id,
    runnable,
    text_ids,
    token_logprobs,
)
from agentroll.server.stop_strings import StopFilter
from agentroll.trajectory import Completion


@dataclass(slots=True)
class LiveChoice:
    """One choice being streamed: what was decoded, parsed and sent so far."""

    index: int
    call: ChatCall
    parser: Any  # the format's stream parser (feed / flush)
    renderer: Any
    decode: Any  # token id -> text, for logprob entries
    text: IncrementalDecoder | None = None  # forced opener + sampled tokens so far, decoded as they come
    stops: StopFilter | None = None  # content is sent up to the request's first stop string
    fed: int = 0  # sampled tokens decoded and fed to the parser
    logprobs_sent: int = 0  # sampled tokens whose logprobs went out
    calls: dict[int, tuple[int, str]] = field(default_factory=dict)  # parser index -> (client index, id)

    def update(self, c: Completion, *, final: bool = False) -> list[dict[str, Any]]:
        """Chunk choice bodies for the tokens `c` added since the last update."""
        if self.text is None:
            self.text = IncrementalDecoder(self.renderer.tokenizer.decode)
            self.stops = StopFilter(self.call.sampling.stop)
        out: list[dict[str, Any]] = []
        upto = len(text_ids(c, self.renderer.stop_token_ids()))
        while self.fed < upto:  # token by token, so each token's text reaches the parser as it is known
            ids = c.token_ids[self.fed : self.fed + 1]
            if self.fed == 0:
                ids = [*self.call.forced, *ids]  # the forced opener's text goes out with the first token's
            self.fed += 1
            out.extend(self._feed(self.text.extend(ids), c))
        if final:  # a character left unfinished at the end goes out as U+FFFD, as the full parse has it
            out.extend(self._feed(self.text.extend((), final=True), c))
        return out

    def _feed(self, text: str, c: Completion) -> list[dict[str, Any]]:
        return list(self._bodies(self.parser.feed(text), c)) if text else []

    def finish(self, c: Completion) -> tuple[Choice, list[dict[str, Any]]]:
        """The full parse of the finished turn, and the last chunk bodies (flushed deltas, finish)."""
        out = self.update(c, final=True)
        out.extend(self._bodies(self.parser.flush(), c))
        held = self.stops.flush() if self.stops is not None else ""
        if held:  # text held back in case it began a stop string: it did not
            out.append({"index": self.index, "delta": {"content": held}, "finish_reason": None, "logprobs": None})
        parsed = self.renderer.parse([*self.call.forced, *c.token_ids], self.call.tools, mode=self.call.tool_parse)
        streamed = sorted(self.calls, key=lambda p: self.calls[p][0])  # parser indices in client order
        kept = [p for p in streamed if p < len(parsed.tool_calls) and runnable(parsed.tool_calls[p])]
        returned = before_stop(carrying(parsed, {p: self.calls[p][1] for p in kept}), self.call.sampling.stop)
        choice = Choice(self.index, c, parsed, returned, kept)
        last: dict[str, Any] = {"index": self.index, "delta": {}, "finish_reason": finish_reason(choice)}
        last["logprobs"] = self._logprobs(c, len(c.token_ids))
        errors = call_errors(parsed)
        if errors:
            last["tool_call_errors"] = errors
        out.append(last)
        return choice, out

    def _bodies(self, deltas: Sequence[Any], c: Completion) -> Iterator[dict[str, Any]]:
        for delta in self._openai_deltas(deltas):
            yield {"index": self.index, "delta": delta, "finish_reason": None, "logprobs": self._logprobs(c, self.fed)}

    def _logprobs(self, c: Completion, upto: int) -> dict[str, Any] | None:
        if not self.call.logprobs:
            return None
        start, self.logprobs_sent = self.logprobs_sent, max(self.logprobs_sent, upto)
        return {"content": token_logprobs(self.decode, c, start, self.logprobs_sent)}

    def _openai_deltas(self, deltas: Sequence[Any]) -> Iterator[dict[str, Any]]:
        for d in deltas:
            if d.content:
                content = self.stops.feed(d.content) if self.stops is not None else d.content
                if content:
                    yield {"content": content}
            elif d.reasoning:
                yield {"reasoning_content": d.reasoning}
            elif d.name is not None:  # a call's first delta: it gets its client index and id now
                if self.call.parallel_tool_calls or not self.calls:
                    self.calls[d.index] = (len(self.calls), new_call_id())
                if d.index in self.calls:
                    i, call_id = self.calls[d.index]
                    function = {"name": d.name, "arguments": d.arguments or ""}
                    yield {"tool_calls": [{"index": i, "id": call_id, "type": "function", "function": function}]}
            elif d.index in self.calls and d.arguments:
                yield {"tool_calls": [{"index": self.calls[d.index][0], "function": {"arguments": d.arguments}}]}


def chunk(rid: str, model: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    return {**body, "choices": choices, **extra}


class Feed:
    """n engine streams, each run in its own task; their (choice index, snapshot) pairs come out of one queue.

    The request handler reads the first pair and the response body the rest: two different tasks. The
    engine streams stay in the tasks that started them (an asyncio timeout is bound to its task), and
    closing the feed cancels them, which aborts their requests. `errors` turns an engine's AgentrollError
    into the APIError the client gets.
    """

    def __init__(self, streams: list[AsyncIterator[Completion]], errors: Any, on_close: Any = None):
        self._queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self._open = len(streams)
        self._errors = errors
        self._on_close = on_close
        self._tasks = [asyncio.ensure_future(self._pump(i, s)) for i, s in enumerate(streams)]

    async def _pump(self, i: int, stream: AsyncIterator[Completion]) -> None:
        try:
            async for c in stream:
                await self._queue.put((i, c))
            await self._queue.put((i, None))
        except Exception as e:  # handed to the reader, which raises it
            await self._queue.put((i, e))

    async def next(self) -> tuple[int, Completion] | None:
        """The next snapshot of any choice; None when every stream has ended."""
        while self._open:
            i, item = await self._queue.get()
            if item is None:
                self._open -= 1
            elif isinstance(item, AgentrollError):
                raise self._errors(item) from item
            elif isinstance(item, Exception):
                raise item
            else:
                try:
                    return i, check_not_aborted(item)  # cut off by the engine: an error event, not a finish
                except AgentrollError as e:
                    raise self._errors(e) from e
        return None

    def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._on_close is not None:
            self._on_close, on_close = None, self._on_close
            on_close()


def event_stream(lines: AsyncIterator[str], cleanup: Callable[[], None]) -> StreamingResponse:
    """A server-sent-events response of `lines`; `cleanup` runs when it ends: finished, failed or hung up."""

    async def body() -> AsyncIterator[str]:
        try:
            async for line in lines:
                yield line
        finally:
            cleanup()

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
