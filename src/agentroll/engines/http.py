"""Shared HTTP plumbing for server engines: one pooled aiohttp session, bounded retries, typed errors.

Retry rule: connection errors (refused, reset, connect timeouts) and 5xx are retried with
exponential backoff, a bounded number of times, within the request's deadline. A response that
came back (any 2xx body, any 4xx) is never re-sent: a 2xx carried tokens, a 4xx will fail again.
The caller's `timeout` is a deadline for the whole call (all tries); passing it raises
EngineTimeout at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from agentroll.errors import ContextOverflow, EngineError, EngineRejected, EngineTimeout, EngineUnavailable

_CONTEXT_WORDS = ("maximum context length", "max_model_len", "context length", "too long")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # total tries for connection errors and 5xx
    backoff_s: float = 0.25
    max_backoff_s: float = 4.0

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2**attempt)


class HTTPClient:
    """A lazily created aiohttp session to one base URL, sized for hundreds of in-flight requests."""

    def __init__(
        self,
        base_url: str,
        *,
        retry: RetryPolicy | None = None,
        max_connections: int = 1024,
        headers: dict[str, str] | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self.retry = retry or RetryPolicy()
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=self._max_connections)
            # No session-wide timeout: each call carries its own deadline.
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10), headers=self._headers
            )
        return self._session

    async def get_json(self, path: str, *, timeout: float = 10.0) -> Any:
        return await self.request("GET", path, None, timeout=timeout)

    async def post_json(
        self, path: str, payload: dict[str, Any], *, timeout: float | None = None, missing_ok: bool = False
    ) -> Any:
        return await self.request("POST", path, payload, timeout=timeout, missing_ok=missing_ok)

    async def request(
        self, method: str, path: str, payload: dict[str, Any] | None, *, timeout: float | None, missing_ok: bool = False
    ) -> Any:
        """One call with retries; returns the decoded JSON body or raises a typed EngineError.

        With `missing_ok`, a 404 returns MISSING instead of raising (to fall back to another API).
        """
        url = self.base_url + path
        deadline = None if timeout is None else time.monotonic() + timeout
        last: Exception | None = None
        for attempt in range(self.retry.attempts):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                return await self._once(method, url, payload, left, missing_ok)
            except (aiohttp.ClientConnectionError, _ServerError) as e:  # incl. connect timeouts: retried
                last = e
                if attempt + 1 < self.retry.attempts:
                    await asyncio.sleep(self.retry.delay(attempt))
            except TimeoutError as e:  # the call's own deadline passed
                raise EngineTimeout(f"{method} {url}: no answer within {timeout} s") from e
        if last is None:
            raise EngineTimeout(f"{method} {url}: no answer within {timeout} s")
        # Repeated 5xx means the server is unwell (e.g. its engine died): treat it as unavailable.
        raise EngineUnavailable(
            f"{method} {url}: {type(last).__name__}: {last} ({self.retry.attempts} tries)"
        ) from last

    async def _once(
        self, method: str, url: str, payload: dict[str, Any] | None, timeout: float | None, missing_ok: bool
    ) -> Any:
        session = self._get_session()
        async with asyncio.timeout(timeout):
            async with session.request(method, url, json=payload) as resp:
                body = await resp.read()
        if resp.status >= 500:
            raise _ServerError(f"HTTP {resp.status}: {_snippet(body)}")
        if resp.status == 404 and missing_ok:
            return MISSING
        if resp.status >= 400:
            _raise_for_status(resp.status, body, f"{method} {url}")
        try:
            return json.loads(body) if body else None
        except json.JSONDecodeError as e:
            raise EngineError(f"{method} {url}: response is not JSON: {_snippet(body)}") from e

    async def stream_events(
        self, path: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """POST and yield each server-sent event's JSON (`data: {...}`) until `data: [DONE]`.

        Not retried: once tokens have streamed, re-sending would sample a different answer. An
        `{"error": ...}` event raises EngineError; `timeout` is a deadline for the whole stream.
        """
        url = self.base_url + path
        try:
            async with asyncio.timeout(timeout):
                async with self._get_session().post(url, json=payload) as resp:
                    if resp.status >= 400:
                        _raise_for_status(resp.status, await resp.read(), f"POST {url}")
                    async for line in resp.content:
                        event = _sse_data(line)
                        if event is None:
                            continue
                        if event == "[DONE]":
                            return
                        if "error" in event:
                            raise EngineError(f"POST {url}: stream error: {event['error']}")
                        yield event
        except TimeoutError as e:
            raise EngineTimeout(f"POST {url}: stream not finished within {timeout} s") from e
        except aiohttp.ClientError as e:
            raise EngineUnavailable(f"POST {url}: {type(e).__name__}: {e}") from e

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _sse_data(line: bytes) -> Any:
    """The JSON (or "[DONE]") of one `data:` line of an event stream; None for anything else."""
    text = line.decode("utf-8").strip()
    if not text.startswith("data:"):
        return None
    data = text[5:].strip()
    if data == "[DONE]":
        return data
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise EngineError(f"event stream: not JSON: {data[:200]}") from e


class EndpointMissing(EngineError):
    """A 404 for the endpoint itself: the server does not offer this API."""


def _raise_for_status(status: int, body: bytes, what: str) -> None:
    """A 4xx/5xx answer as a typed error (the retry loop handles 5xx itself, before this)."""
    text = _snippet(body)
    if status == 404:
        raise EndpointMissing(f"{what}: HTTP 404: {text}")
    if status >= 500:
        raise EngineUnavailable(f"{what}: HTTP {status}: {text}")
    if status == 400 and any(w in text.lower() for w in _CONTEXT_WORDS):
        raise ContextOverflow(f"{what}: {text}")
    if status in (400, 413, 422):
        raise EngineRejected(f"{what}: HTTP {status}: {text}")
    raise EngineError(f"{what}: HTTP {status}: {text}")


MISSING = object()  # what `request(..., missing_ok=True)` returns for a 404


class _ServerError(Exception):
    """A 5xx: retried, then reported as EngineError."""


def _snippet(body: bytes, limit: int = 500) -> str:
    return body[:limit].decode("utf-8", "replace")


class ServerEngine:
    """What every engine in front of one inference server shares: its client, what it learned of the
    model, a `/health` probe, and closing the connection pool. Subclasses add `models` and `generate`."""

    name = "server"

    def __init__(self, base_url: str, *, retry: RetryPolicy | None = None):
        self.base_url = base_url
        self.http = HTTPClient(base_url, retry=retry)
        self._model: str | None = None
        self._max_model_len: int | None = None

    @property
    def max_model_len(self) -> int | None:
        return self._max_model_len

    async def health(self) -> bool:
        try:
            await self.http.request("GET", "/health", None, timeout=5.0)
        except EngineError:
            return False
        return True

    async def aclose(self) -> None:
        await self.http.aclose()
