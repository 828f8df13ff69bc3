"""An engine that answers instantly with pre-sampled token IDs: replay a recorded run, or measure
everything around the engine (the orchestration ceiling, `agentroll bench` P2/P3).

Each session (episode) replays the same script: its n-th generate call returns the n-th recorded
completion (the last one again once the script is used up). The engine still behaves like one:
it refuses a prompt that cannot fit (`ContextOverflow`), stops at the first stop token the caller
asked for, and cuts at `max_tokens` with finish_reason "length". The prompt is never read beyond
its length, so a replayed turn is the recorded one whatever the prompt was.

    engine = ReplayEngine.from_trajectory(recorded)          # what the policy sampled, turn by turn
    engine = ReplayEngine([Completion(ids1), Completion(ids2)])
"""

from __future__ import annotations

from collections.abc import Sequence

from agentroll.engines.base import check_context
from agentroll.errors import ConfigError
from agentroll.trajectory import Completion, Trajectory
from agentroll.types import SamplingParams


class ReplayEngine:
    """Token-in/token-out engine whose answers are a fixed script of completions (see module doc)."""

    name = "replay"

    def __init__(self, script: Sequence[Completion | Sequence[int]], *, max_model_len: int | None = None):
        if not script:
            raise ConfigError("ReplayEngine: the script needs at least one completion")
        self._script = [c if isinstance(c, Completion) else Completion(token_ids=list(c)) for c in script]
        self._max_model_len = max_model_len
        self._calls: dict[str | None, int] = {}  # session -> generate calls so far
        self._cuts: dict[tuple[int, tuple[int, ...]], int] = {}  # (script index, stop ids) -> end
        self.calls = 0

    @classmethod
    def from_trajectory(cls, traj: Trajectory, *, max_model_len: int | None = None) -> ReplayEngine:
        """Replay what the policy sampled in `traj`, turn by turn (logprobs and top-k included)."""
        script = [
            Completion(t.sampled_ids, t.logprobs, t.top_logprobs, finish_reason=t.finish_reason) for t in traj.turns
        ]
        return cls(script, max_model_len=max_model_len)

    async def generate(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingParams,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> Completion:
        check_context(len(prompt_ids), sampling, self._max_model_len)
        n = self._calls.get(session_id, 0)
        self._calls[session_id] = n + 1
        self.calls += 1
        k = min(n, len(self._script) - 1)
        recorded = self._script[k]
        end, reason = self._end(k, recorded, sampling)
        return Completion(
            token_ids=recorded.token_ids[:end],
            logprobs=None if recorded.logprobs is None else recorded.logprobs[:end],
            top_logprobs=None if recorded.top_logprobs is None else recorded.top_logprobs[:end],
            finish_reason=reason,
            prompt_tokens=len(prompt_ids),
            meta={"engine": self.name, "request_id": request_id, "latency_s": 0.0, "replayed": k},
        )

    def _end(self, k: int, recorded: Completion, sampling: SamplingParams) -> tuple[int, str]:
        """Where the replayed completion ends for these sampling params, and why."""
        ids = recorded.token_ids
        stops = tuple(sampling.stop_token_ids)  # like vLLM, ignore_eos does not ignore explicit stop tokens
        key = (k, stops)
        end = self._cuts.get(key)
        if end is None:  # first stop token (kept, as engines keep it), cached per script entry and stop set
            stop_set = set(stops)
            end = next((i + 1 for i, t in enumerate(ids) if t in stop_set), len(ids))
            self._cuts[key] = end
        if end > sampling.max_tokens:
            return sampling.max_tokens, "length"
        if end < len(ids):
            return end, "stop"
        return end, recorded.finish_reason

    def forget(self, session_id: str | None) -> None:
        """Start `session_id`'s script over (its next call gets the first completion again)."""
        self._calls.pop(session_id, None)

    async def health(self) -> bool:
        return True

    async def models(self) -> list[str]:
        return [self.name]

    @property
    def max_model_len(self) -> int | None:
        return self._max_model_len

    async def aclose(self) -> None:
        self._calls.clear()
