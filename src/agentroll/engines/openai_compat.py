"""Any OpenAI-compatible server (vLLM, llama.cpp, SGLang, API providers).

Design (engines know no chat templates):
- `generate(prompt_ids)` uses `/v1/completions` with the prompt as a list of token IDs (the
  OpenAI completions API accepts token arrays). The Completion is token-exact when the server
  returns the sampled IDs (vLLM's `return_token_ids`, or `token_id:N` token strings); otherwise
  its text is re-tokenized with the `tokenize` callable given at construction and the Completion
  says `token_exact=False`.
- `chat(messages, tools, sampling)` uses `/v1/chat/completions` for servers that only speak chat
  (API models): the server renders the prompt with its own template, so the result is the
  assistant message plus a Completion that is token-exact only when the server returned token
  IDs. It exists for the server layer and chat-only backends; the token-in path is `generate`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentroll.engines.base import UNKNOWN, check_context, check_logprobs_mode, normalize_finish_reason
from agentroll.engines.http import HTTPClient, RetryPolicy
from agentroll.engines.vllm_server import pick_prompt_logprobs
from agentroll.errors import ConfigError, EngineError
from agentroll.trajectory import Completion, TopK
from agentroll.types import Message, SamplingParams, ToolCall, ToolSpec

Tokenize = Callable[[str], list[int]]


@dataclass(slots=True)
class ChatResult:
    message: Message
    completion: Completion


class OpenAIEngine:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        tokenize: Tokenize | None = None,
        token_ids: bool | str = True,
        https: bool | str = False,
        retry: RetryPolicy | None = None,
        logprobs_mode: str = UNKNOWN,
    ):
        """`base_url` is http://HOST:PORT[/path]; the path defaults to /v1.

        `token_ids=False` stops asking for vLLM's `return_token_ids` (for strict servers that
        reject unknown fields). `api_key` defaults to $OPENAI_API_KEY. `logprobs_mode`: what the server's
        logprobs are of, where its operator knows (OpenAI-compatible servers do not say): "unknown" by default.
        """
        self.logprobs_mode = check_logprobs_mode(logprobs_mode)
        if str(https).lower() in ("1", "true"):
            base_url = "https://" + base_url.removeprefix("http://")
        path = base_url.partition("://")[2].partition("/")[2]
        self.base_url = base_url if path else base_url + "/v1"
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.http = HTTPClient(self.base_url, retry=retry, headers={"Authorization": f"Bearer {key}"} if key else None)
        self.model = model
        self.tokenize = tokenize
        self.ask_token_ids = str(token_ids).lower() not in ("0", "false")
        self._max_model_len: int | None = None

    @property
    def max_model_len(self) -> int | None:
        return self._max_model_len

    async def health(self) -> bool:
        try:
            await self.models()
        except EngineError:
            return False
        return True

    async def models(self) -> list[str]:
        data = (await self.http.get_json("/models")).get("data") or []
        if data and self.model is None:
            self.model = data[0]["id"]
        for m in data:
            if m["id"] == self.model and isinstance(m.get("max_model_len"), int):
                self._max_model_len = m["max_model_len"]
        return [m["id"] for m in data]

    async def generate(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> Completion:
        if self.model is None:
            await self.models()
        check_context(len(prompt_ids), sampling, self._max_model_len)
        started = time.monotonic()
        payload = {**completion_params(sampling), "model": self.model, "prompt": list(prompt_ids)}
        payload["logprobs"] = max(1, sampling.logprobs)  # 1: the sampled token's own logprob
        if self.ask_token_ids:
            payload.update(return_token_ids=True, return_tokens_as_token_ids=True)
        body = await self.http.post_json("/completions", payload, timeout=timeout)
        c = parse_completion(body, sampling.logprobs, self.tokenize)
        return self._finish(c, request_id, started)

    async def chat(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        sampling: SamplingParams | None = None,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> ChatResult:
        """One chat turn rendered by the server. Token-exact only if the server returns IDs."""
        sampling = sampling or SamplingParams()
        if self.model is None:
            await self.models()
        started = time.monotonic()
        payload: dict[str, Any] = {**completion_params(sampling), "model": self.model}
        payload["messages"] = [_to_openai_message(m) for m in messages]
        if tools:
            payload["tools"] = [t.to_openai() for t in tools]
        payload["logprobs"] = True
        if sampling.logprobs:
            payload["top_logprobs"] = sampling.logprobs
        if self.ask_token_ids:
            payload.update(return_token_ids=True, return_tokens_as_token_ids=True)
        body = await self.http.post_json("/chat/completions", payload, timeout=timeout)
        message, c = parse_chat(body, sampling.logprobs, self.tokenize)
        return ChatResult(message, self._finish(c, request_id, started))

    async def prompt_logprobs(self, token_ids: Sequence[int], *, session_id: str | None = None) -> list[float | None]:
        """Teacher-forced logprobs through vLLM's `prompt_logprobs` extension (vLLM servers only)."""
        if self.model is None:
            await self.models()
        payload = {"model": self.model, "prompt": list(token_ids), "max_tokens": 1, "prompt_logprobs": 0}
        rows = (await self.http.post_json("/completions", payload, timeout=120))["choices"][0].get("prompt_logprobs")
        if rows is None:
            raise EngineError(f"{self.base_url}: the server does not support prompt_logprobs")
        return pick_prompt_logprobs(rows, token_ids)

    def _finish(self, c: Completion, request_id: str | None, started: float) -> Completion:
        c.meta.update(engine=self.name, server=self.base_url, request_id=request_id or uuid.uuid4().hex)
        c.meta["logprobs_mode"] = self.logprobs_mode
        c.meta["latency_s"] = round(time.monotonic() - started, 6)
        return c

    async def aclose(self) -> None:
        await self.http.aclose()


def completion_params(s: SamplingParams) -> dict[str, Any]:
    """Standard OpenAI fields plus the common extensions (top_k, min_p, ...) most servers accept."""
    if s.structural_tag is not None:
        raise ConfigError("an OpenAI-compatible engine cannot enforce guided decoding (structural_tag): use the "
                          "embedded engine, a vLLM server, or tool_choice_enforcement: opener")  # fmt: skip
    d: dict[str, Any] = {"max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p}
    if s.stop:
        d["stop"] = list(s.stop)
    if s.seed is not None:
        d["seed"] = s.seed
    if s.top_k > 0:
        d["top_k"] = s.top_k
    if s.min_p > 0:
        d["min_p"] = s.min_p
    if s.repetition_penalty != 1.0:
        d["repetition_penalty"] = s.repetition_penalty
    if s.stop_token_ids:
        d["stop_token_ids"] = list(s.stop_token_ids)
    if s.ignore_eos:
        d["ignore_eos"] = True
    return d


def parse_completion(body: dict[str, Any], k: int, tokenize: Tokenize | None) -> Completion:
    choice = body["choices"][0]
    lp = choice.get("logprobs") or {}
    tokens = lp.get("tokens") or []
    ids = choice.get("token_ids")
    if ids is None and tokens and all(str(t).startswith("token_id:") for t in tokens):
        ids = [int(str(t).split(":", 1)[1]) for t in tokens]
    logprobs = [float(x) for x in lp["token_logprobs"]] if lp.get("token_logprobs") is not None else None
    top = None
    if k > 0 and lp.get("top_logprobs") is not None and ids is not None:
        top = [_best_first([(_tid(t), float(v)) for t, v in row.items()], k) for row in lp["top_logprobs"]]
    return _completion(choice, ids, logprobs, top, choice.get("text") or "", body, tokenize)


def parse_chat(body: dict[str, Any], k: int, tokenize: Tokenize | None) -> tuple[Message, Completion]:
    choice = body["choices"][0]
    msg = choice.get("message") or {}
    calls = tuple(
        ToolCall(
            id=c.get("id") or f"call_{i}",
            name=c["function"]["name"],
            arguments=_args(c),
            raw=c["function"].get("arguments"),
        )
        for i, c in enumerate(msg.get("tool_calls") or [])
    )
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    message = Message(role="assistant", content=msg.get("content"), reasoning=reasoning, tool_calls=calls)
    content = (choice.get("logprobs") or {}).get("content")
    logprobs = [float(e["logprob"]) for e in content] if content else None
    top = None
    if k > 0 and content:
        top = [[(_tid(t.get("token", "")), float(t["logprob"])) for t in e.get("top_logprobs", [])] for e in content]
        if any(t[0] < 0 for row in top for t in row):
            top = None  # the server spelled tokens as text: no IDs to give
    return message, _completion(
        choice, choice.get("token_ids"), logprobs, top, msg.get("content") or "", body, tokenize
    )


def _completion(
    choice: dict[str, Any],
    ids: list[int] | None,
    logprobs: list[float] | None,
    top: list[TopK] | None,
    text: str,
    body: dict[str, Any],
    tokenize: Tokenize | None,
) -> Completion:
    exact = ids is not None
    if ids is None:
        if tokenize is None:
            raise EngineError(
                "the server returned text only; give OpenAIEngine a `tokenize` to use it (not token-exact)"
            )
        ids = tokenize(text)
    if logprobs is not None and len(logprobs) != len(ids):
        logprobs, top = None, None  # re-tokenized text need not split like the server's tokens
    if top is not None and len(top) != len(ids):
        top = None
    c = Completion([int(t) for t in ids], logprobs, top, normalize_finish_reason(choice.get("finish_reason")))
    c.token_exact = exact
    usage = body.get("usage") or {}
    c.prompt_tokens = usage.get("prompt_tokens")
    c.cached_prompt_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    c.meta["text"] = text
    return c


def _to_openai_message(m: Message) -> dict[str, Any]:
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        d["tool_calls"] = [c.to_openai() for c in m.tool_calls]
    if m.tool_call_id is not None:
        d["tool_call_id"] = m.tool_call_id
    if m.name is not None and m.role == "tool":
        d["name"] = m.name
    return d


def _args(call: dict[str, Any]) -> dict[str, Any]:
    import json

    raw = call["function"].get("arguments") or "{}"
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return {}  # the raw text is kept on the ToolCall; the agent's parser reports the failure
    return value if isinstance(value, dict) else {}


def _tid(token: str) -> int:
    return int(token.split(":", 1)[1]) if str(token).startswith("token_id:") else -1


def _best_first(pairs: list[tuple[int, float]], k: int) -> TopK:
    return sorted(pairs, key=lambda p: -p[1])[:k]
