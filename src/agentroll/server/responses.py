"""Engine completions -> OpenAI response bodies and SSE chunks (chat and text completions).

The model's tokens are parsed by the renderer (never re-encoded). Streamed chunks: streaming.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentroll.server.requests import ChatCall
from agentroll.server.stop_strings import cut
from agentroll.trajectory import Completion
from agentroll.types import Message, ParsedMessage, ParsedToolCall, ParseStatus


@dataclass(slots=True)
class Choice:
    """One sampled answer: the engine's tokens, and what the renderer parsed from them."""

    index: int
    completion: Completion
    parsed: ParsedMessage
    returned: Message  # the assistant message as the client receives it
    call_indices: list[int]  # the parser index of each call in `returned`


def returned_message(parsed: ParsedMessage, parallel_tool_calls: bool) -> tuple[Message, list[int]]:
    """The message for the client, and which of the turn's calls it carries (their parser indices).

    It carries the calls a client can run (`runnable`); only the first unless parallel. Malformed or
    unknown-tool calls are reported beside the message (`tool_call_errors`).
    """
    kept = [i for i, c in enumerate(parsed.tool_calls) if runnable(c)]
    kept = kept if parallel_tool_calls else kept[:1]
    return carrying(parsed, {i: new_call_id() for i in kept}), kept


def runnable(c: ParsedToolCall) -> bool:
    """A call a client can run: parsed, or parsed with arguments off the schema (as OpenAI's non-strict
    mode may return)."""
    return c.call is not None and c.status in (ParseStatus.OK, ParseStatus.SCHEMA_MISMATCH)


def new_call_id() -> str:
    """Unique across a conversation: parsers number calls per turn (`call_0`), and clients (the agents
    SDK) match results to calls by id across a conversation."""
    return f"call_{uuid.uuid4().hex[:24]}"


def before_stop(m: Message, stops: Sequence[str]) -> Message:
    """The message as the client gets it: content cut before the first stop string (stop_strings.py)."""
    if not stops or not isinstance(m.content, str):
        return m
    return m.model_copy(update={"content": cut(m.content, stops)})


def carrying(parsed: ParsedMessage, ids: dict[int, str]) -> Message:
    """The turn's assistant message with the calls at these parser indices, under these ids, in this order."""
    calls = tuple(parsed.tool_calls[i].call.model_copy(update={"id": call_id}) for i, call_id in ids.items())
    m = parsed.message
    return Message(role="assistant", content=m.content, reasoning=m.reasoning, tool_calls=calls)


def text_ids(c: Completion, stop_ids: Sequence[int]) -> list[int]:
    """The completion's tokens that are text: a finished turn's final stop token ends it, it is not text."""
    done = c.finish_reason is not None
    return c.token_ids[:-1] if done and c.token_ids and c.token_ids[-1] in stop_ids else c.token_ids


def finish_reason(choice: Choice) -> str:
    if choice.completion.finish_reason == "length":
        return "length"
    return "tool_calls" if choice.returned.tool_calls else "stop"


def message_body(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": m.content}
    if m.reasoning is not None:
        out["reasoning_content"] = m.reasoning
    if m.tool_calls:
        out["tool_calls"] = [c.to_openai() for c in m.tool_calls]
    return out


def chat_body(
    rid: str, model: str, call: ChatCall, prompt: list[int], choices: Sequence[Choice], decode: Any
) -> dict[str, Any]:
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [_choice_body(call, prompt, c, decode) for c in choices],
        "usage": usage(prompt, choices),
    }


def _choice_body(call: ChatCall, prompt: list[int], c: Choice, decode: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "index": c.index,
        "message": message_body(c.returned),
        "finish_reason": finish_reason(c),
        "logprobs": {"content": token_logprobs(decode, c.completion)} if call.logprobs else None,
    }
    errors = call_errors(c.parsed)
    if errors:
        body["tool_call_errors"] = errors  # extension: malformed calls are data, not silently dropped
    if call.token_ids:
        body["prompt_token_ids"] = list(prompt)
        body["token_ids"] = list(c.completion.token_ids)
    return body


def call_errors(parsed: ParsedMessage) -> list[dict[str, Any]]:
    """The turn's calls that did not parse cleanly, as the `tool_call_errors` extension reports them."""
    bad = [p for p in parsed.tool_calls if p.status != ParseStatus.OK]
    return [{"status": p.status.value, "raw": p.raw, "error": p.error} for p in bad]


def usage(prompt: list[int], choices: Sequence[Choice]) -> dict[str, int]:
    completion = sum(len(c.completion.token_ids) for c in choices)
    return {"prompt_tokens": len(prompt), "completion_tokens": completion, "total_tokens": len(prompt) + completion}


def token_logprobs(decode: Any, c: Completion, start: int = 0, end: int | None = None) -> list[dict[str, Any]]:
    """OpenAI chat logprob entries for sampled tokens [start, end)."""
    if c.logprobs is None:
        return []
    out = []
    for i in range(start, len(c.token_ids) if end is None else end):
        top = c.top_logprobs[i] if c.top_logprobs is not None else []
        entry = _entry(decode, c.token_ids[i], c.logprobs[i])
        entry["top_logprobs"] = [_entry(decode, tid, lp) for tid, lp in top]
        out.append(entry)
    return out


def _entry(decode: Any, token_id: int, logprob: float) -> dict[str, Any]:
    text = decode(token_id)
    return {"token": text, "logprob": max(logprob, -9999.0), "bytes": list(text.encode("utf-8"))}


def sse(obj: dict[str, Any] | str) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)}\n\n"
