"""New policy weights for a running engine, and which policy sampled each token.

    update = await engine.update_weights("ckpt/step-3", version=3, mode="keep")

An RL loop changes the policy every step while episodes are in flight. Engines that can take new
weights without a restart implement `WeightUpdatable` (engines.base): pause generation, load the
new weights in place, label them with an integer `version`, resume. The pause mode says what
happens to requests in flight (vLLM's own modes):

- `abort`: they end at once (finish reason "abort", `meta["abort_cause"] = "weight_update"`);
  the episode loop samples that turn again on the new weights (or restarts the episode, by policy).
- `wait`: new requests wait; the update starts when the in-flight ones have finished.
- `keep`: they freeze and continue on the new weights; their tokens are split by version.

Every Completion carries `policy_versions`: [(first token index, version), ...] over its sampled
tokens, from vLLM's own per-token weight-version spans. A source is a checkpoint folder (safetensors,
as `save_pretrained` writes) or an in-memory state dict, which is written to a temporary folder
first (vLLM reloads from files; the folder must be readable by the engine's workers).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from agentroll.errors import ConfigError, EngineError

PauseMode = Literal["abort", "wait", "keep"]
PAUSE_MODES: tuple[str, ...] = ("abort", "wait", "keep")
WEIGHT_UPDATE = "weight_update"  # Completion.meta["abort_cause"] of a request ended by an update's pause
# A checkpoint folder, or a state dict {parameter name: tensor} in the checkpoint's (Hugging Face) names.
WeightSource = str | os.PathLike | Mapping[str, Any]


@dataclass(slots=True)
class WeightUpdate:
    """What one update did: the new version, how long generation stood still, where it was applied."""

    version: int
    mode: str
    stall_s: float  # from the pause to the resume: no token was sampled in that time
    load_s: float  # the part spent loading weights
    applied: list[str] = field(default_factory=list)  # engines/servers that took the weights
    failed: dict[str, str] = field(default_factory=dict)  # engine/server -> error, for a pool

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "mode": self.mode,
            "stall_s": round(self.stall_s, 4),
            "load_s": round(self.load_s, 4),
            "applied": list(self.applied),
            "failed": dict(self.failed),
        }


def check_mode(mode: str) -> str:
    if mode not in PAUSE_MODES:
        raise ConfigError(f"pause mode {mode!r}: expected one of {', '.join(PAUSE_MODES)}")
    return mode


def parse_version(label: Any) -> int:
    """vLLM's weight-version label -> our integer version; the label of the weights it started with
    ("default", or none) is version 0."""
    if label in (None, "", "default"):
        return 0
    try:
        return int(label)
    except (TypeError, ValueError):
        raise ConfigError(f"weight version {label!r}: agentroll labels weights with integers") from None


def spans_to_starts(spans: Sequence[Any] | None) -> list[tuple[int, int]] | None:
    """vLLM's WeightVersionSpan list (objects or dicts with version/start/end) -> [(start, version)]."""
    if not spans:
        return None
    out = []
    for s in spans:
        version, start = (s["version"], s["start"]) if isinstance(s, dict) else (s.version, s.start)
        out.append((int(start), parse_version(version)))
    return out


def starts_for(n_tokens: int, version: int) -> list[tuple[int, int]] | None:
    """One version for every sampled token (engines that report none per token)."""
    return [(0, version)] if n_tokens else None


@contextlib.contextmanager
def checkpoint_dir(source: WeightSource) -> Iterator[Path]:
    """A folder vLLM can reload from: `source` itself, or a state dict written to a temporary folder."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_dir() or not any(path.glob("*.safetensors")):
            raise ConfigError(f"weights {path}: expected a checkpoint folder with *.safetensors files")
        yield path.resolve()
        return
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory(prefix="agentroll-weights-") as tmp:
        # CPU copies that share no storage: safetensors refuses views and tied tensors (embeddings = lm_head)
        tensors = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in source.items()}
        save_file(tensors, os.path.join(tmp, "model.safetensors"))
        yield Path(tmp)


def fingerprint(source: WeightSource) -> str:
    """A name for a set of weights: sha256 over the sorted, distinct per-tensor digests (dtype, shape, bytes).

    The same weights get the same fingerprint whether they are a state dict or a checkpoint folder: names are
    left out and identical tensors count once, so a tied LM head (a second name for the embedding in a state
    dict, absent from the saved folder) changes nothing."""
    digests = {tensor_digest(t) for _, t in _tensors(source)}
    h = hashlib.sha256()
    for d in sorted(digests):
        h.update(d.encode())
    return h.hexdigest()


def _tensors(source: WeightSource) -> Iterator[tuple[str, Any]]:
    if isinstance(source, Mapping):
        yield from source.items()
        return
    from safetensors import safe_open

    files = sorted(Path(source).glob("*.safetensors"))
    if not files:
        raise ConfigError(f"weights {source}: expected a checkpoint folder with *.safetensors files")
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                yield name, f.get_tensor(name)


def tensor_digest(tensor: Any) -> str:
    """sha256 of a tensor's dtype, shape and bytes."""
    import torch

    data = tensor.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{data.dtype}{tuple(data.shape)}".encode())
    h.update(data.view(-1).view(torch.uint8).numpy())
    return h.hexdigest()


class Inflight:
    """The request IDs an engine has in flight, so that the ones a pause(mode="abort") ends are told
    apart from other aborts: their Completions get `meta["abort_cause"] = "weight_update"`."""

    def __init__(self) -> None:
        self.started_on: dict[str, int] = {}  # request ID -> the policy version when it was sent
        self.preempted: set[str] = set()

    @contextlib.contextmanager
    def track(self, rid: str, version: int) -> Iterator[None]:
        self.started_on[rid] = version
        try:
            yield
        finally:
            self.started_on.pop(rid, None)

    def preempt_all(self) -> None:
        self.preempted |= self.started_on.keys()

    def stamp(self, c: Any, rid: str) -> None:
        """On a finished Completion: the abort cause, and the version it started on where the engine gave none."""
        if c.finish_reason is None:
            return
        if rid in self.preempted:
            self.preempted.discard(rid)
            if c.finish_reason == "abort":
                c.meta["abort_cause"] = WEIGHT_UPDATE
                c.meta["abort_message"] = "a weight update paused the engine with mode=abort"
        if c.policy_versions is None and c.token_ids and rid in self.started_on:
            c.policy_versions = [(0, self.started_on[rid])]


class Reloadable(Protocol):
    """What `reload_in_place` drives: an engine's pause/resume and its three steps of vLLM's RL API."""

    async def pause(self, mode: PauseMode = "wait") -> None: ...

    async def resume(self) -> None: ...

    async def _reload(self, path: Path, version: int) -> None: ...  # load the folder's weights in place

    async def _reset_prefix_cache(self) -> bool: ...  # with the running (frozen) requests

    async def _label(self, version: int) -> None: ...  # update_weight_version, and the engine's own record


async def reload_in_place(engine: Reloadable, path: Path, version: int, mode: PauseMode, name: str) -> WeightUpdate:
    """Pause, reload from `path`, drop the prefix cache, label the weights `version`, resume (whatever failed)."""
    paused = time.monotonic()
    await engine.pause(mode)
    try:
        loading = time.monotonic()
        await engine._reload(path, version)
        load_s = time.monotonic() - loading
        # Cached keys and values are the old weights': drop them, the frozen requests' too (mode=keep),
        # which then recompute their context on the new weights.
        if not await engine._reset_prefix_cache():
            raise EngineError(f"{name}: the prefix cache could not be reset after loading new weights")
        await engine._label(version)
    finally:
        await engine.resume()
    return WeightUpdate(version, mode, time.monotonic() - paused, load_s, applied=[name])
