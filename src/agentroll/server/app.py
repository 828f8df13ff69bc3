"""The OpenAI-compatible server: FastAPI routes in front of any engine, every token captured.

    app = create_app(ServerConfig(engine="embedded", renderer="smollm2"))

Routes: /health, /v1/models, /v1/chat/completions, /v1/completions, /sessions/{id}/v1/models and
/sessions/{id}/v1/chat/completions (chat calls there are stitched into the session's trajectory), plus
GET /sessions, GET /sessions/{id}/trajectory, POST /sessions/{id}/reward, POST /sessions/{id}/verify,
DELETE /sessions/{id},
GET /sessions/export.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agentroll.errors import AgentrollError
from agentroll.server import errors
from agentroll.server.chat import Generator, chat_completion
from agentroll.server.completions import text_completion
from agentroll.server.errors import APIError
from agentroll.server.export import FILE_FORMATS, export_bytes, finished, jsonable, jsonl_lines, save
from agentroll.server.protocol import ChatCompletionRequest, CompletionRequest, RewardRequest
from agentroll.server.sessions import SessionStore
from agentroll.types import Enforcement, ParseMode


class ServerConfig(BaseModel):
    """How `agentroll serve` is set up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: str = "embedded"
    renderer: str = "smollm2"
    model_name: str | None = None  # the name clients pass as `model`; default: the renderer's name
    api_keys: tuple[str, ...] = ()
    default_max_tokens: int = Field(256, ge=1)
    max_concurrency: int = Field(64, ge=1)  # requests in the engine at once
    max_queue: int = Field(256, ge=0)  # waiting beyond that: 429
    request_timeout_s: float | None = Field(300.0, gt=0)
    warm_up: bool = True  # start the engine before serving (the embedded one takes ~30 s)
    save_dir: str | None = None  # every session's trajectory, as a run's trajectories.jsonl, written at shutdown
    max_sessions: int = Field(100_000, ge=1)  # sessions held in memory; more get 429 until some are deleted
    # lenient (vLLM's behaviour): calls its parsers accept after a repair are returned; strict: only
    # well-formed calls, the rest reported in tool_call_errors (docs/toolcalls.md)
    tool_parse: ParseMode = "lenient"
    # tool_choice required / named: guided (the engine's guided decoding holds the turn to a valid call of an
    # offered tool: a call is guaranteed, as with OpenAI and vLLM) or opener (only the call opener is forced)
    tool_choice_enforcement: Enforcement = "guided"


def create_app(config: ServerConfig, *, engine: Any = None, renderer: Any = None) -> FastAPI:
    """Build the app. `engine` / `renderer` override the ones the config names (already built)."""
    state = {"gen": _build(config, engine, renderer)}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gen = state["gen"]
        if config.warm_up:
            await gen.engine.health()
        try:
            yield
        finally:
            if config.save_dir:
                save(finished(gen.store.all(), gen.renderer), config.save_dir)
            await gen.engine.aclose()

    app = FastAPI(title="agentroll", version="0.1.0", lifespan=lifespan)
    errors.install(app)
    auth = Depends(functools.partial(_check_key, config.api_keys))

    def gen() -> Generator:
        return state["gen"]

    @app.get("/health")
    async def health() -> JSONResponse:
        if await gen().engine.health():
            return JSONResponse({"status": "ok"})
        down = errors.body(503, "engine unavailable", code="engine_unavailable")
        return JSONResponse({"status": "unavailable", **down}, status_code=503)

    @app.get("/v1/models", dependencies=[auth])
    async def models() -> dict[str, Any]:
        return gen().models_body()

    @app.post("/v1/chat/completions", dependencies=[auth], responses=_ERRORS)
    async def chat(
        req: ChatCompletionRequest,
        request: Request,
        x_agentroll_session: str | None = Header(None, include_in_schema=False),
    ) -> Any:
        """A plain call, or a session call when the client names one in the X-Agentroll-Session header
        (for clients whose base_url cannot carry the /sessions/{id} prefix)."""
        sid = _session_id(x_agentroll_session) if x_agentroll_session is not None else None
        return await _unless_client_leaves(request, chat_completion(gen(), req, sid))

    @app.post("/v1/completions", dependencies=[auth], responses=_ERRORS)
    async def completions(
        req: CompletionRequest,
        request: Request,
        x_agentroll_session: str | None = Header(None, include_in_schema=False),
    ) -> Any:
        if x_agentroll_session is not None:
            raise APIError(400, "X-Agentroll-Session: sessions record chat calls only", param="X-Agentroll-Session")
        return await _unless_client_leaves(request, text_completion(gen(), req))

    @app.get("/sessions/{session_id}/v1/models", dependencies=[auth])
    async def session_models(session_id: str) -> dict[str, Any]:
        return gen().models_body()

    @app.post("/sessions/{session_id}/v1/chat/completions", dependencies=[auth], responses=_ERRORS)
    async def session_chat(session_id: str, req: ChatCompletionRequest, request: Request) -> Any:
        return await _unless_client_leaves(request, chat_completion(gen(), req, _session_id(session_id)))

    @app.get("/sessions", dependencies=[auth])
    async def sessions() -> dict[str, Any]:
        return {"data": [_summary(s) for s in gen().store.all()]}

    @app.get("/sessions/export", dependencies=[auth], responses=_ERRORS)
    async def export(format: str = "jsonl") -> Response:
        """Every session in one of the runner's formats (jsonl: one Trajectory.to_dict() per line)."""
        if format not in FILE_FORMATS:
            raise APIError(400, f"format: one of {', '.join(FILE_FORMATS)}", param="format")
        trajs = finished(gen().store.all(), gen().renderer)
        if format == "jsonl":
            return StreamingResponse(jsonl_lines(trajs), media_type="application/x-ndjson")
        data = await asyncio.to_thread(export_bytes, trajs, format)
        return Response(data, media_type="application/vnd.apache.parquet")

    @app.get("/sessions/{session_id}/trajectory", dependencies=[auth], responses=_ERRORS)
    async def trajectory(session_id: str) -> JSONResponse:
        s = _session(gen(), session_id)
        async with s.lock:
            return JSONResponse(jsonable(s.snapshot(gen().renderer).to_dict()))

    @app.delete("/sessions/{session_id}", dependencies=[auth], responses=_ERRORS)
    async def delete(session_id: str) -> JSONResponse:
        """Forget a session; the body is its final trajectory (fetch-and-forget in one call)."""
        s = _session(gen(), session_id)
        async with s.lock:
            gen().store.pop(session_id)
            return JSONResponse(jsonable(s.snapshot(gen().renderer).to_dict()))

    @app.post("/sessions/{session_id}/verify", dependencies=[auth], responses=_ERRORS)
    async def verify(session_id: str) -> JSONResponse:
        """Teacher-forced check: the engine rescores each segment; sampled logprobs must match within 1e-3."""
        from agentroll.engines.base import PromptScorer
        from agentroll.rollout.verify import verify_trajectories

        g = gen()
        if not isinstance(g.engine, PromptScorer):
            raise APIError(400, f"engine {g.engine.name} cannot compute prompt logprobs", param="engine")
        s = _session(g, session_id)
        async with s.lock:
            traj = s.snapshot(g.renderer)
            try:
                report = await verify_trajectories(g.engine, [traj])
            except AgentrollError as e:
                raise errors.from_agentroll(e) from e
        return JSONResponse(jsonable(report))

    @app.post("/sessions/{session_id}/reward", dependencies=[auth], responses=_ERRORS)
    async def reward(session_id: str, req: RewardRequest) -> dict[str, Any]:
        s = _session(gen(), session_id)
        async with s.lock:
            s.traj.rewards.update(req.rewards)
            s.traj.task_id = req.task_id if req.task_id is not None else s.traj.task_id
            s.traj.reward = req.reward if req.reward is not None else s.traj.reward
            return {"id": s.id, "task_id": s.traj.task_id, "reward": s.traj.reward, "rewards": s.traj.rewards}

    return app


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text} for code, text in ((400, "bad request"), (401, "bad API key"), (404, "not found"))
} | {429: {"description": "engine saturated"}, 503: {"description": "engine unavailable"}}


def _build(config: ServerConfig, engine: Any, renderer: Any) -> Generator:
    from agentroll.engines.registry import make_engine
    from agentroll.renderers import get_renderer

    renderer = renderer or get_renderer(config.renderer)
    return Generator(
        engine=engine or make_engine(config.engine),
        renderer=renderer,
        model_name=config.model_name or renderer.name,
        store=SessionStore(renderer.name, config.max_sessions),
        default_max_tokens=config.default_max_tokens,
        max_concurrency=config.max_concurrency,
        max_queue=config.max_queue,
        timeout_s=config.request_timeout_s,
        tool_parse=config.tool_parse,
        tool_choice_enforcement=config.tool_choice_enforcement,
    )


async def _check_key(keys: tuple[str, ...], request: Request) -> None:
    if not keys:
        return
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not any(hmac.compare_digest(given.encode(), k.encode()) for k in keys):
        raise APIError(401, "missing or wrong API key (Authorization: Bearer KEY)", code="invalid_api_key")


def _session_id(session_id: str) -> str:
    if not (1 <= len(session_id) <= 256) or not session_id.isprintable():
        raise APIError(400, "session id: 1-256 printable characters", param="session_id")
    return session_id


def _session(gen: Generator, session_id: str) -> Any:
    s = gen.store.get(session_id)
    if s is None:
        raise APIError(404, f"no session {session_id!r}", param="session_id", code="session_not_found")
    return s


def _summary(s: Any) -> dict[str, Any]:
    t = s.traj
    return {"id": s.id, "turns": len(t.turns), "segments": len(t.segments), "reward": t.reward}


async def _unless_client_leaves(request: Request, work: Any) -> Any:
    """Run a route's work, cancelled if the client hangs up first, as vLLM's `with_cancellation` does:
    the engine requests are aborted (their slots freed) and a session records nothing the client never
    got. A streamed answer is handed back at once; its response watches the connection itself."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait([task, gone], return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is stopping: the work goes with it
        task.cancel()
        raise
    finally:
        gone.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return Response(status_code=499)  # nobody reads it: the client has gone
    return task.result()


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects (the body is read by then: the next message is the hang-up)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
