"""P1's two phases on one engine: a multi-turn tool rollout (the real runner) whose every request is
recorded, and a raw replay of exactly those requests.

The rollout is `agentroll.rollout.runner.run` on the GSM8K calculator demo (examples/), driven through a
`RecordingEngine` that notes each call's prompt IDs as sent (forced opener included), its completion
length and its times. The replay sends the same prompts with `ignore_eos` and `max_tokens` = the recorded
length, the same sampling otherwise, in the same order of submission under the same concurrency cap.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentroll.agent import EpisodeConfig
from agentroll.errors import ConfigError, EngineError
from agentroll.rollout.config import RunConfig, load_config
from agentroll.trajectory import Completion
from agentroll.types import SamplingParams

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gsm8k_calculator.yaml"


@dataclass(frozen=True, slots=True)
class Workload:
    questions: int
    max_turns: int
    max_tokens: int
    concurrency: int
    # Every turn calls the calculator: the template's call opener up to the arguments is prefilled (no grammar),
    # and the turn stops at the call's end, as the peer's grammar-forced `tool_choice: required` would. Left
    # free, the 135M model names tools that do not exist or writes on past `</tool_call>` to max_tokens.
    tool_choice: str = "calculator"
    stop: tuple[str, ...] = ("</tool_call>",)
    temperature: float = 1.0

    def describe(self) -> str:
        return (
            f"{self.questions} GSM8K questions, calculator tool, tool_choice={self.tool_choice} (forced opener, "
            f"stop at {' '.join(self.stop) or 'EOS'}), max {self.max_turns} turns x {self.max_tokens} tokens, "
            f"temperature {self.temperature}, concurrency {self.concurrency}"
        )


FULL = Workload(questions=64, max_turns=4, max_tokens=96, concurrency=64)
QUICK = Workload(questions=8, max_turns=2, max_tokens=48, concurrency=8)


def run_config(w: Workload) -> RunConfig:
    """The demo run config (system prompt, one worked example) with the benchmark's budgets."""
    if not EXAMPLE.exists():
        raise ConfigError(f"P1 needs the repository's {EXAMPLE.relative_to(EXAMPLE.parents[1])} (not installed?)")
    sampling = SamplingParams(max_tokens=w.max_tokens, temperature=w.temperature, stop=w.stop, logprobs=0)
    episode = EpisodeConfig(max_turns=w.max_turns, sampling=sampling, tool_choice=w.tool_choice)
    return load_config(EXAMPLE, limit=w.questions, samples_per_task=1, concurrency=w.concurrency, episode=episode)


@dataclass(slots=True)
class Request:
    """One generate call as the engine saw it (monotonic times)."""

    seq: int
    session: str
    prompt_ids: list[int]
    sent: float
    done: float = 0.0
    generated: int = 0
    cached: int | None = None
    failed: bool = False


class RecordingEngine:
    """Passes every call to `engine` unchanged and records it; the rest of the engine API is delegated."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.name = engine.name
        self.requests: list[Request] = []

    @property
    def max_model_len(self) -> int | None:
        return self.engine.max_model_len

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams, **kw: Any) -> Completion:
        r = Request(len(self.requests), kw.get("session_id") or "", list(prompt_ids), time.monotonic())
        self.requests.append(r)
        try:
            c = await self.engine.generate(prompt_ids, sampling, **kw)
        except BaseException:
            r.failed, r.done = True, time.monotonic()
            raise
        r.done, r.generated, r.cached = time.monotonic(), len(c.token_ids), c.cached_prompt_tokens
        return c

    async def health(self) -> bool:
        return await self.engine.health()

    async def models(self) -> list[str]:
        return await self.engine.models()

    async def aclose(self) -> None:
        """The caller owns the wrapped engine and closes it."""


@dataclass(slots=True)
class Phase:
    wall_s: float  # the whole phase as a caller sees it (a rollout includes the runner's own setup)
    requests: list[Request]
    trajectories: list[dict[str, Any]]
    cpu_s: float = 0.0  # this process's CPU time in the phase: on a 2-core box the client competes with the engine

    @property
    def span_s(self) -> float:
        """First request sent -> last answer back."""
        done = [r for r in self.requests if r.done]
        return max(r.done for r in done) - min(r.sent for r in done) if done else 0.0


async def rollout(config: RunConfig, engine: Any, *, toolset: Any = None) -> Phase:
    """One runner run (fresh run dir, no progress bar) through a recording wrapper of `engine` (with the
    config's tools, or `toolset`)."""
    from agentroll.rollout.runner import run

    rec = RecordingEngine(engine)
    with tempfile.TemporaryDirectory(prefix="agentroll-p1-") as tmp:
        started, cpu = time.monotonic(), time.process_time()
        await run(config, Path(tmp) / "run", engine=rec, toolset=toolset, progress=False)
        wall, cpu = time.monotonic() - started, time.process_time() - cpu
        lines = (Path(tmp) / "run" / "trajectories.jsonl").read_text(encoding="utf-8").splitlines()
    return Phase(wall, rec.requests, [json.loads(line) for line in lines], cpu)


def replay_params(requests: Sequence[Request], sampling: SamplingParams) -> list[SamplingParams]:
    """The rollout's sampling, but exactly the recorded number of tokens: no stops, EOS ignored."""
    base = sampling.model_copy(update={"stop": (), "stop_token_ids": (), "ignore_eos": True})
    return [base.model_copy(update={"max_tokens": max(1, r.generated)}) for r in requests]


async def replay(
    engine: Any, requests: Sequence[Request], params: Sequence[SamplingParams], concurrency: int, tag: str
) -> Phase:
    """Send `requests` (in their order) as independent raw generations, at most `concurrency` in flight."""
    rec = RecordingEngine(engine)
    todo = iter(zip(requests, params, strict=True))

    async def worker() -> None:
        for r, sp in todo:  # one shared iterator: submission order is the recorded order
            try:
                await rec.generate(r.prompt_ids, sp, request_id=f"{tag}-{r.seq}", session_id=r.session)
            except EngineError:
                continue  # recorded as failed; the tokens it did not produce are simply not counted

    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(requests)))))
    return Phase(time.monotonic() - started, rec.requests, [], time.process_time() - cpu)


async def chained_replay(
    engine: Any, requests: Sequence[Request], params: Sequence[SamplingParams], concurrency: int, tag: str
) -> Phase:
    """Raw replay that keeps each episode's turns in order (turn n+1 sent the moment turn n is back), at most
    `concurrency` episodes at once: the multi-turn structure without the loop's client work (profiling)."""
    rec = RecordingEngine(engine)
    sessions: dict[str, list[tuple[Request, SamplingParams]]] = {}
    for r, sp in zip(requests, params, strict=True):
        sessions.setdefault(r.session, []).append((r, sp))
    todo = iter(sessions.values())

    async def worker() -> None:
        for turns in todo:
            for r, sp in turns:
                try:
                    await rec.generate(r.prompt_ids, sp, request_id=f"{tag}-{r.seq}", session_id=r.session)
                except EngineError:
                    break

    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(sessions)))))
    return Phase(time.monotonic() - started, rec.requests, [], time.process_time() - cpu)
