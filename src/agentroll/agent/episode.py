"""The episode loop: render -> generate -> parse -> run tools -> bridge -> repeat.

Read `run_episode` top to bottom. Each token's loss mask is set where the
token is produced: sampled by the engine -> 1 (with its logprob), rendered by
us -> 0. The model's tokens are parsed, never re-encoded; what follows them is
a bridge. Every way an episode can end is a recorded stop reason (limits.Stop).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentroll.agent.environment import Environment, ToolEnvironment
from agentroll.agent.limits import Budget, Stop, check
from agentroll.agent.records import FORCED, append_tokens, logprobs_convention, note_logprobs_mode, turn_record
from agentroll.agent.task import EpisodeConfig, Task
from agentroll.agent.toolchoice import GUIDED, forced_call
from agentroll.engines.base import abort_reason
from agentroll.engines.weights import WEIGHT_UPDATE
from agentroll.errors import AgentrollError, ConfigError, ContextOverflow, EngineError, EpisodePreempted
from agentroll.trajectory import Completion, Segment, Trajectory, Turn
from agentroll.types import Message, ParsedMessage, ParseStatus, ToolResult, ToolSpec

MAX_PREEMPTIONS = 3  # weight updates that may abort one turn before the episode records an engine error


@dataclass(slots=True)
class Episode:
    """The loop's working state; `traj` is what gets returned."""

    traj: Trajectory
    tools: list[ToolSpec]
    segment: Segment
    check_mask: list[int] = field(default_factory=list)  # segment mask with forced openers marked
    budget: Budget = field(default_factory=Budget)

    def append(self, ids: list[int], *, mask: int, logprobs: list[float] | None = None) -> None:
        append_tokens(self.segment, self.check_mask, ids, mask, logprobs)

    def new_segment(self, ids: list[int], reason: str) -> None:
        self.segment = Segment(reason=reason)
        self.traj.segments.append(self.segment)
        self.check_mask = []
        self.append(ids, mask=0)


async def run_episode(
    task: Task,
    *,
    engine: Any,
    renderer: Any,
    toolset: Any,
    config: EpisodeConfig,
    episode_id: str | None = None,
    sample_index: int = 0,
    environment: Environment | None = None,
) -> Trajectory:
    """Run one episode to a stop reason. Never raises for engine, tool or parse failures.

    `environment` decides what follows each turn (default: tool results; no call ends the episode)."""
    env = environment or ToolEnvironment()
    ep = _start(task, renderer, toolset, config, episode_id, sample_index)
    sampling = config.sampling.model_copy(
        update={"stop_token_ids": tuple({*config.sampling.stop_token_ids, *renderer.stop_token_ids()})}
    )
    stop = None
    while stop is None and (stop := check(ep.budget, config, len(ep.segment), engine.max_model_len)) is None:
        forced, turn_sampling = forced_call(renderer, ep.tools, config, len(ep.traj.turns), sampling)
        started = time.monotonic()
        try:
            # The live segment, not a copy (O(context) per turn): nothing is appended until generate returns.
            prompt = ep.segment.token_ids + forced if forced else ep.segment.token_ids
            completion = await _generate(engine, ep, prompt, turn_sampling, config)
        except ContextOverflow:
            stop = Stop.CONTEXT_OVERFLOW
            break
        except (TimeoutError, EngineError) as e:
            ep.traj.metadata["error"] = f"{type(e).__name__}: {e}"
            stop = Stop.TIMEOUT if isinstance(e, TimeoutError) and _episode_timed_out(ep, config) else Stop.ENGINE_ERROR
            break
        ep.append(forced, mask=FORCED)
        ep.append(completion.token_ids, mask=1, logprobs=completion.logprobs)
        parsed = renderer.parse(
            forced + completion.token_ids if forced else completion.token_ids, ep.tools, mode=config.tool_parse
        )
        turn = _record_turn(ep, completion, parsed, len(forced), started)
        turn.constrained = GUIDED if turn_sampling.structural_tag is not None else None
        ep.traj.messages.append(parsed.message)
        if completion.finish_reason == "length":
            stop = Stop.LENGTH
            break
        if (aborted := abort_reason(completion)) is not None:  # not a turn the model finished
            ep.traj.metadata["error"] = aborted
            stop = Stop.ENGINE_ERROR
            break
        tool_started = time.monotonic()
        results = await _run_tools(toolset, parsed, ep, config) if parsed.tool_calls else []
        turn.tools_s = time.monotonic() - tool_started
        ep.traj.tool_results.extend(results)
        if config.on_tool_error == "stop" and any(_failed(r) for r in results):
            stop = Stop.TOOL_FAILURE
            break
        try:
            new = await env.respond(task, ep.traj.messages, results)
        except Exception as e:  # user code: one episode's failure is recorded, the run goes on
            ep.traj.metadata["error"] = f"environment: {type(e).__name__}: {e}"
            stop = Stop.ENVIRONMENT_ERROR
            break
        if not new:
            stop = Stop.DONE
            break
        stop = _bridge(ep, renderer, new, parsed.stopped, turn, config)
    ep.traj.stop_reason = stop or Stop.DONE
    if config.check_prefix != "off":
        _check_prefix(ep, renderer)
    return ep.traj


def _start(
    task: Task, renderer: Any, toolset: Any, config: EpisodeConfig, episode_id: str | None, sample_index: int
) -> Episode:
    tools = _task_tools(task, toolset, config)
    traj = Trajectory(
        id=episode_id or uuid.uuid4().hex,
        task_id=task.id,
        sample_index=sample_index,
        messages=list(task.messages),
        metadata={"renderer": renderer.name, "logprobs": logprobs_convention(config.sampling)},
    )
    prompt = renderer.render(task.messages, tools)  # rendered once; never again for this segment
    ep = Episode(traj=traj, tools=tools, segment=Segment(reason="initial"))
    traj.segments.append(ep.segment)
    ep.append(prompt, mask=0)
    return ep


def _task_tools(task: Task, toolset: Any, config: EpisodeConfig) -> list[ToolSpec]:
    specs = toolset.specs() if toolset is not None else []
    if task.tools is not None:
        specs = [s for s in specs if s.name in task.tools]
    if config.tool_choice == "none":
        return []
    if config.tool_choice not in ("auto", "required") and config.tool_choice not in {s.name for s in specs}:
        raise ConfigError(f"tool_choice: no tool named {config.tool_choice!r} (tools: {[s.name for s in specs]})")
    return specs


async def _generate(
    engine: Any, ep: Episode, prompt_ids: list[int], sampling: Any, config: EpisodeConfig
) -> Completion:
    """One generate call; a generation a weight update aborted is sampled again on the new weights."""
    for attempt in range(MAX_PREEMPTIONS + 1):
        timeout = None
        if config.timeout_s is not None:
            timeout = max(0.001, config.timeout_s - (time.monotonic() - ep.budget.started))
        rid = f"{ep.traj.id}-{ep.budget.turns}" + (f"-p{attempt}" if attempt else "")
        completion = await engine.generate(prompt_ids, sampling, request_id=rid, timeout=timeout, session_id=ep.traj.id)
        if completion.meta.get("abort_cause") != WEIGHT_UPDATE or attempt == MAX_PREEMPTIONS:
            break
        if config.on_weight_update_abort == "restart_episode":
            raise EpisodePreempted(f"episode {ep.traj.id}: a weight update aborted turn {ep.budget.turns}")
        ep.traj.metadata["preempted_tokens"] = ep.traj.metadata.get("preempted_tokens", 0) + len(completion.token_ids)
    if attempt:
        completion.meta["preempted"] = attempt  # this turn was sampled again `attempt` times
    return completion


def _episode_timed_out(ep: Episode, config: EpisodeConfig) -> bool:
    return config.timeout_s is not None and time.monotonic() - ep.budget.started >= config.timeout_s - 0.01


def _record_turn(ep: Episode, completion: Completion, parsed: ParsedMessage, forced: int, started: float) -> Turn:
    turn = turn_record(
        completion, parsed, index=ep.budget.turns, segment=len(ep.traj.segments) - 1,
        context_len=len(ep.segment), forced=forced, started=started,
    )  # fmt: skip
    if not completion.token_exact:
        ep.traj.metadata["token_exact"] = False
    note_logprobs_mode(ep.traj.metadata["logprobs"], completion)
    ep.traj.turns.append(turn)
    ep.budget.turns += 1
    ep.budget.parse_errors += sum(c.status != ParseStatus.OK for c in parsed.tool_calls)
    return turn


async def _run_tools(toolset: Any, parsed: ParsedMessage, ep: Episode, config: EpisodeConfig) -> list[ToolResult]:
    """Run the turn's usable calls concurrently; answer each malformed one with an error result."""
    usable = [c for c in parsed.tool_calls if c.call is not None and c.status == ParseStatus.OK]
    calls = usable if config.parallel_tool_calls else usable[:1]
    ran = iter(await toolset.call_many([c.call for c in calls]) if calls else [])
    results: list[ToolResult] = []
    for i, c in enumerate(parsed.tool_calls):
        if c in calls:
            results.append(next(ran))
        elif c in usable:  # every call gets an answer, or the next render has a call left open
            results.append(_skipped_result(c))
        else:
            results.append(_malformed_result(c, i, config))
    return results


SKIPPED = "skipped"  # the metadata status of a call answered "not run" (parallel calls off): not a failed tool


def _failed(r: ToolResult) -> bool:
    return r.is_error and r.metadata.get("status") != SKIPPED


def _skipped_result(c: Any) -> ToolResult:
    content = "Not run: one tool call per turn (parallel tool calls are off); only the first call ran."
    return ToolResult(
        tool_call_id=c.call.id, name=c.call.name, content=content, is_error=True, metadata={"status": SKIPPED}
    )


def _malformed_result(c: Any, index: int, config: EpisodeConfig) -> ToolResult:
    call_id = c.call.id if c.call is not None else f"call_{index}"
    name = c.call.name if c.call is not None else "unknown"
    message = config.malformed_call_message.format(error=c.error or c.status.value)
    return ToolResult(tool_call_id=call_id, name=name, content=message, is_error=True, metadata={"status": c.status})


def _bridge(ep: Episode, renderer: Any, new: Sequence[Message], stopped: bool, turn: Turn, config: EpisodeConfig):
    """Append the bridge (mask 0) after a sampled turn, or start a new segment when the template requires it."""
    try:
        bridge = renderer.bridge(ep.traj.messages, new, ep.tools, stopped=stopped)
    except AgentrollError as e:
        ep.traj.metadata["error"] = f"bridge: {e}"
        return Stop.ENGINE_ERROR if isinstance(e, EngineError) else Stop.RENDER_ERROR
    ep.traj.messages.extend(new)
    if bridge.new_segment:
        if config.check_prefix == "every_turn":
            _check_prefix(ep, renderer)
        ep.new_segment(bridge.token_ids, bridge.reason or "new segment")
    else:
        ep.append(bridge.token_ids, mask=0)
        if config.check_prefix == "every_turn":
            _check_prefix(ep, renderer)
    turn.bridge_len = len(bridge.token_ids)
    return None


def _check_prefix(ep: Episode, renderer: Any) -> None:
    """Record drift of the current segment against the canonical render (design.md's runtime check)."""
    checker = getattr(renderer, "check_prefix", None)
    if checker is None:
        ep.traj.metadata.setdefault("prefix_check", "unsupported")
        return
    # All messages so far belong to the current segment: a new segment re-renders the whole history.
    try:
        drift = checker(ep.traj.messages, ep.tools, ep.segment.token_ids, ep.check_mask)
    except AgentrollError as e:  # a diagnostic: it is noted, the episode's tokens are kept
        ep.traj.metadata["prefix_check"] = f"failed: {type(e).__name__}: {e}"
        return
    drifts = ep.traj.metadata.setdefault("drift", [])
    if drift is not None:
        drifts.append({"segment": len(ep.traj.segments) - 1, "token_index": drift.token_index, "why": drift.context})
