"""`/v1/completions`: raw text (or token-ID) prompts, no chat template; legacy logprobs; streaming.

The prompt is encoded as given (a string) or taken as token IDs. `echo` prepends the prompt text to
each choice (its tokens carry no logprob here: null entries, as OpenAI gives the first one).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.responses import StreamingResponse

from agentroll.renderers.incremental import IncrementalDecoder
from agentroll.server.chat import Generator
from agentroll.server.errors import APIError
from agentroll.server.errors import body as error_body
from agentroll.server.protocol import CompletionRequest
from agentroll.server.requests import check_stream_options, fitted, sampling_params
from agentroll.server.responses import sse, text_ids
from agentroll.server.stop_strings import StopFilter, cut
from agentroll.server.streaming import event_stream
from agentroll.trajectory import Completion


@dataclass(slots=True)
class TextCall:
    prompt: list[int]
    prompt_text: str
    logprobs: bool
    token_ids: bool
    echo: bool
    stops: tuple[str, ...] = ()  # the text ends before the first (stop_strings.py)


async def text_completion(gen: Generator, req: CompletionRequest) -> Any:
    gen.check_model(req.model)
    if req.suffix:
        raise APIError(400, "suffix: not supported (no fill-in-the-middle template)", param="suffix")
    check_stream_options(req)
    prompt = _text_prompt(gen, req.prompt)
    sampling = sampling_params(req, gen.renderer, req.max_tokens or 16, req.logprobs or 0)
    sampling = fitted(sampling, req.max_tokens is not None, len(prompt), await gen.window())
    call = TextCall(
        prompt=prompt,
        prompt_text=gen.renderer.tokenizer.decode(prompt) if req.echo else "",
        logprobs=req.logprobs is not None or bool(req.return_logprobs),
        token_ids=req.return_token_ids,
        echo=req.echo,
        stops=sampling.stop,
    )
    rid = f"cmpl-{uuid.uuid4().hex}"
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return await _stream(gen, rid, call, gen.stream(prompt, sampling, req.n, None), include_usage)
    completions = await gen.generate(prompt, sampling, req.n, None)
    choices = [_choice(gen, call, i, c) for i, c in enumerate(completions)]
    return _body(gen, rid, choices, usage=_usage(prompt, completions))


def _body(gen: Generator, rid: str, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    head = {"id": rid, "object": "text_completion", "created": int(time.time()), "model": gen.model_name}
    return {**head, "choices": choices, **extra}


def _usage(prompt: list[int], completions: list[Completion]) -> dict[str, int]:
    n_out = sum(len(c.token_ids) for c in completions)
    return {"prompt_tokens": len(prompt), "completion_tokens": n_out, "total_tokens": len(prompt) + n_out}


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


def _choice(gen: Generator, call: TextCall, i: int, c: Completion) -> dict[str, Any]:
    sampled = gen.renderer.tokenizer.decode(text_ids(c, gen.renderer.stop_token_ids()))
    text = call.prompt_text + cut(sampled, call.stops)
    out: dict[str, Any] = {"index": i, "text": text, "finish_reason": c.finish_reason}
    out["logprobs"] = _logprobs(gen, c, 0, len(c.token_ids), 0, call.prompt_text) if call.logprobs else None
    if call.token_ids:
        out["prompt_token_ids"], out["token_ids"] = list(call.prompt), list(c.token_ids)
    return out


def _logprobs(gen: Generator, c: Completion, start: int, end: int, offset: int, echoed: str = "") -> dict[str, Any]:
    """Legacy logprobs of sampled tokens [start, end); text offsets count from `offset` (absolute)."""
    tokens = [gen.decode_one(t) for t in c.token_ids[start:end]]
    top = [{gen.decode_one(t): max(lp, -9999.0) for t, lp in row} for row in (c.top_logprobs or [])[start:end]]
    token_logprobs: list[float | None] = [max(lp, -9999.0) for lp in (c.logprobs or [])[start:end]]
    top_rows: list[Any] = top
    if echoed:  # the echoed prompt is one entry without a logprob, as OpenAI returns the first prompt token
        tokens, token_logprobs, top_rows = [echoed, *tokens], [None, *token_logprobs], [None, *top]
    offsets, pos = [], offset
    for t in tokens:
        offsets.append(pos)
        pos += len(t)
    top_logprobs = top_rows or None
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs, "text_offset": offsets}


async def _stream(gen: Generator, rid: str, call: TextCall, feed: Any, include_usage: bool) -> StreamingResponse:
    try:
        first = await feed.next()
    except BaseException:
        feed.close()
        raise
    return event_stream(_chunks(gen, rid, call, first, feed, include_usage), feed.close)


@dataclass(slots=True)
class _Sent:
    text: IncrementalDecoder  # the sampled text sent so far, decoded as it comes
    stops: StopFilter  # what of it may go out: nothing from a stop string on
    tokens: int = 0  # sampled tokens whose logprobs went out
    offset: int = 0  # text offset of the next logprob entry
    echoed: bool = False  # the echoed prompt went out (with the first delta)


async def _chunks(gen: Generator, rid: str, call: TextCall, first: Any, feed: Any, include_usage: bool):
    sent: dict[int, _Sent] = {}
    finished: dict[int, Completion] = {}
    item = first
    try:
        while item is not None:
            i, c = item
            if i not in sent:
                sent[i] = _Sent(IncrementalDecoder(gen.renderer.tokenizer.decode), StopFilter(call.stops))
            body = _delta(gen, call, i, c, sent[i])
            if body is not None:
                yield sse(_body(gen, rid, [body]))
            if c.finish_reason is not None:
                finished[i] = c
            item = await feed.next()
    except APIError as e:  # the response has started: the error goes in the stream
        yield sse(error_body(e.status, e.message, e.param, e.code))
        yield sse("[DONE]")
        return
    if include_usage:
        yield sse(_body(gen, rid, [], usage=_usage(call.prompt, [finished[i] for i in sorted(finished)])))
    yield sse("[DONE]")


def _delta(gen: Generator, call: TextCall, i: int, c: Completion, sent: _Sent) -> dict[str, Any] | None:
    """The chunk choice for what `c` added; None when nothing new can be sent yet."""
    echo = "" if sent.echoed else call.prompt_text
    done = c.finish_reason is not None
    new_text = sent.text.sync(text_ids(c, gen.renderer.stop_token_ids()), final=done)
    if sent.text.pending:
        return None  # an unfinished UTF-8 character: wait for its next byte (at the end it goes out as U+FFFD)
    new_text = sent.stops.feed(new_text) + (sent.stops.flush() if done else "")
    if not new_text and not echo and c.finish_reason is None:
        return None
    out: dict[str, Any] = {"index": i, "text": echo + new_text, "finish_reason": c.finish_reason, "logprobs": None}
    if call.logprobs:
        out["logprobs"] = _logprobs(gen, c, sent.tokens, len(c.token_ids), sent.offset, echo)
        sent.offset += len(out["text"])
    sent.tokens, sent.echoed = len(c.token_ids), True
    if c.finish_reason is not None and call.token_ids:
        out["prompt_token_ids"], out["token_ids"] = list(call.prompt), list(c.token_ids)
    return out
