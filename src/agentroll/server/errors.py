"""OpenAI-style error bodies and the mapping from agentroll's error tree to HTTP status codes.

Every failure leaves as `{"error": {"message", "type", "param", "code"}}`. Bad input is a 4xx that
names the field; a dead or saturated engine is 503/429; nothing a client sends may produce a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agentroll.errors import (
    AgentrollError,
    ConfigError,
    ContextOverflow,
    EngineError,
    EngineRejected,
    EngineTimeout,
    EngineUnavailable,
    RenderError,
)

log = logging.getLogger("agentroll.server")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}


class APIError(Exception):
    """An error with its HTTP status and the request field it concerns."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def from_agentroll(e: AgentrollError, param: str | None = None) -> APIError:
    """Type an agentroll error at the HTTP boundary."""
    if isinstance(e, ContextOverflow):
        return APIError(400, f"{param or 'messages'}: {e}", param=param or "messages", code="context_length_exceeded")
    if isinstance(e, EngineRejected):  # the request was at fault: a 4xx, so clients do not retry it
        return APIError(400, f"the engine refused the request: {e}", code="invalid_request")
    if isinstance(e, EngineUnavailable | EngineTimeout):
        return APIError(503, f"engine unavailable: {e}", code="engine_unavailable")
    if isinstance(e, EngineError):
        return APIError(503, f"engine error: {e}", code="engine_error")
    if isinstance(e, ConfigError | RenderError):
        return APIError(400, str(e), param=param)
    return APIError(400, str(e), param=param)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    # Union members show up as type names in the location; they say nothing to a client.
    parts = [p for p in parts if not p.startswith(("function-", "literal[", "list[", "str", "int", "NamedToolChoice"))]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an OpenAI-style body."""

    @app.exception_handler(APIError)
    async def _api(request: Request, e: APIError) -> JSONResponse:
        return JSONResponse(body(e.status, e.message, e.param, e.code), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = e.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        param = _loc(tuple(first.get("loc", ())))
        # The input is never echoed: it may hold NaN or huge values that JSON cannot carry back.
        message = "; ".join(f"{_loc(tuple(x.get('loc', ())))}: {x.get('msg', 'invalid')}" for x in errors[:5])
        return JSONResponse(body(400, message, param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(body(e.status_code, str(e.detail)), status_code=e.status_code, headers=e.headers)

    @app.exception_handler(AgentrollError)
    async def _agentroll(request: Request, e: AgentrollError) -> JSONResponse:
        api = from_agentroll(e)
        return JSONResponse(body(api.status, api.message, api.param, api.code), status_code=api.status)

    @app.exception_handler(Exception)
    async def _bug(request: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse(body(500, f"internal error: {type(e).__name__}"), status_code=500)
