"""Run directory -> the viewer's model: plain JSON-able dicts, the only thing the page reads.

    model = load_run(Path("runs/gsm8k"))
    model["episodes"]   one small row per trajectory (the list, the charts, the filters)
    model["details"]    per trajectory the token strip and turns (the page parses one when it is selected)
    model["vocab"]      token ID -> text piece, for the IDs the run uses (shared by every strip)
    model["prefixes"]   prompt prefixes many episodes share (system prompt, few-shot examples), stored once

Token strips are stored compactly because they dominate the page size: a shared prefix reference
[pool index, length] plus the remaining IDs, the mask as runs ("0:526,2:16,1:25": 526 rendered, 16 of a
forced tool-call opener, 25 sampled) and logprobs only for the sampled tokens, in order.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from agentroll.errors import ConfigError
from agentroll.rollout.store import MANIFEST, SUMMARY, TRAJECTORIES, read_records
from agentroll.rollout.summary import Tally, summarize
from agentroll.trajectory import Trajectory, Turn

MAX_TEXT = 2000  # characters of a tool result / call kept on the page; the run directory has the rest
MIN_SHARED = 32  # a shared prompt prefix shorter than this is not worth a reference
MAX_PREFIXES = 64  # distinct shared prefixes kept (a run usually has one system prompt + examples)


def load_run(run_dir: Path) -> dict[str, Any]:
    """Read RUN_DIR (run.json, trajectories.jsonl, summary.json) into the view model."""
    path = run_dir / TRAJECTORIES
    if not path.exists():
        raise ConfigError(f"{path}: no such file (is {run_dir} a run directory?)")
    records = list(read_records(path))
    trajs = [Trajectory.from_dict(r) for r in records]
    manifest = _read_json(run_dir / MANIFEST)
    summary = _read_json(run_dir / SUMMARY) or _summary(records)
    renderer = manifest.get("config", {}).get("renderer") or next(
        (t.metadata["renderer"] for t in trajs if t.metadata.get("renderer")), None
    )
    examples = {m.get("content") for m in manifest.get("config", {}).get("examples") or []}
    vocab, decode_note = token_texts(renderer, {i for t in trajs for s in t.segments for i in s.token_ids})
    pool = PrefixPool()
    return {
        "run": _run_info(run_dir, manifest, summary, renderer, decode_note),
        "summary": summary,
        "episodes": [episode_row(t, order) for order, t in enumerate(trajs)],
        "details": [episode_detail(t, examples, pool) for t in trajs],
        "vocab": vocab,
        "prefixes": pool.entries,
    }


class PrefixPool:
    """Prompt prefixes shared across episodes: each strip stores a reference instead of the same
    few hundred IDs again (a 3,000-episode GSM8K run: ~4x smaller page)."""

    def __init__(self) -> None:
        self.entries: list[list[int]] = []

    def share(self, ids: list[int], prompt_len: int) -> list[int] | None:
        """[entry, length] of the longest shared prefix of `ids`, adding its prompt as an entry if new."""
        best, length = max(
            ((k, _common(e, ids)) for k, e in enumerate(self.entries)), key=lambda x: x[1], default=(0, 0)
        )
        if length >= MIN_SHARED:
            return [best, length]
        if prompt_len >= MIN_SHARED and len(self.entries) < MAX_PREFIXES:
            self.entries.append(ids[:prompt_len])
            return [len(self.entries) - 1, prompt_len]
        return None


def token_texts(renderer: str | None, ids: set[int]) -> tuple[dict[str, str], str]:
    """Each ID's own text piece from the run's renderer tokenizer; ({}, why) when it cannot be loaded."""
    if not renderer:
        return {}, "no renderer named in run.json: showing token IDs"
    try:
        from agentroll.renderers import get_renderer

        tokenizer = get_renderer(renderer).tokenizer
        return {str(i): tokenizer.decode([i]) for i in sorted(ids)}, ""
    except Exception as e:
        return {}, f"renderer {renderer!r} could not be loaded ({type(e).__name__}: {e}): showing token IDs"


def episode_row(t: Trajectory, order: int) -> dict[str, Any]:
    """What the episode list, the filters and the charts need from one trajectory."""
    sampled = sum(len(turn.sampled_ids) for turn in t.turns)
    generate_s = sum(turn.generate_s for turn in t.turns)
    return {
        "i": order,  # position in trajectories.jsonl = finish order
        "id": t.id,
        "task": t.task_id,
        "sample": t.sample_index,
        "reward": t.reward,
        "stop": t.stop_reason or "?",
        "turns": len(t.turns),
        "tokens": sum(len(s) for s in t.segments),
        "sampled": sampled,
        "segments": len(t.segments),
        "tool_calls": sum(len(turn.tool_calls) for turn in t.turns),
        "tool_errors": sum(r.is_error for r in t.tool_results),
        "generate_s": round(generate_s, 4),
        "tools_s": round(sum(turn.tools_s for turn in t.turns), 4),
        "finished_at": _finished_at(t),
        "drift": bool(t.metadata.get("drift")),
        "error": t.metadata.get("error"),
    }


def episode_detail(
    t: Trajectory, examples: set[str | None] = frozenset(), pool: PrefixPool | None = None
) -> dict[str, Any]:
    """The selected-episode view: segments as compact strips, turns with their tool calls and results.
    `examples`: the contents of the config's few-shot messages, so the task shown is the episode's own."""
    question = next((m.content for m in t.messages if m.role == "user" and m.content not in examples), None)
    return {
        "id": t.id,
        "rewards": t.rewards,
        "metadata": _clip(t.metadata),
        "segments": [_strip(t, n, pool or PrefixPool()) for n in range(len(t.segments))],
        "turns": [_turn(turn, results) for turn, results in zip(t.turns, _results_by_turn(t), strict=True)],
        "question": _text(question),
    }


def _strip(t: Trajectory, n: int, pool: PrefixPool) -> dict[str, Any]:
    seg = t.segments[n]
    prompt_len = min(
        (turn.prompt_len - int(turn.meta.get("forced_prefix_len", 0)) for turn in t.turns if turn.segment == n),
        default=len(seg),
    )
    prefix = pool.share(seg.token_ids, prompt_len)
    mask = ["1" if m else "0" for m in seg.loss_mask]
    for turn in t.turns:  # a forced opener sits right before the sampled tokens: rendered by us, in the model's turn
        forced = int(turn.meta.get("forced_prefix_len", 0))
        if turn.segment == n and forced:
            mask[turn.prompt_len - forced : turn.prompt_len] = ["2"] * forced
    logprobs = [_round(lp) for lp, m in zip(seg.logprobs, seg.loss_mask, strict=True) if m]
    ids = seg.token_ids[prefix[1] :] if prefix else seg.token_ids
    return {"reason": seg.reason, "prefix": prefix, "ids": ids, "mask": _runs(mask), "lp": logprobs}


def _turn(turn: Turn, results: list[Any]) -> dict[str, Any]:
    forced = int(turn.meta.get("forced_prefix_len", 0))
    return {
        "index": turn.index,
        "segment": turn.segment,
        "start": turn.prompt_len - forced,  # where this turn's own tokens begin in its segment
        "forced": forced,
        "sampled": len(turn.sampled_ids),
        "bridge": turn.bridge_len,
        "finish": turn.finish_reason,
        "generate_s": round(turn.generate_s, 4),
        "tools_s": round(turn.tools_s, 4),
        "calls": [
            {
                "status": str(c.status),
                "name": c.call.name if c.call else None,
                "arguments": _text(json.dumps(c.call.arguments, ensure_ascii=False)) if c.call else None,
                "raw": _text(c.raw),
                "error": c.error,
            }
            for c in turn.tool_calls
        ],
        "results": [
            {
                "call_id": r.tool_call_id,
                "name": r.name,
                "content": _text(r.content),
                "is_error": r.is_error,
                "duration_s": round(r.duration_s, 4),
                "metadata": _clip(r.metadata),
            }
            for r in results
        ],
        "meta": _clip({k: v for k, v in turn.meta.items() if k not in ("model", "forced_prefix_len")}),
    }


def _results_by_turn(t: Trajectory) -> list[list[Any]]:
    """Tool results in turn order: the loop appends each turn's results in the order of its calls
    (a malformed call gets `call_{i}`), so they are matched greedily by call ID, turn by turn."""
    pending = list(t.tool_results)
    out: list[list[Any]] = []
    for turn in t.turns:
        mine = []
        for i, c in enumerate(turn.tool_calls):
            want = c.call.id if c.call is not None else f"call_{i}"
            if pending and pending[0].tool_call_id == want:
                mine.append(pending.pop(0))
        out.append(mine)
    if pending and out:  # results we could not place (e.g. written by another environment) stay visible
        out[-1].extend(pending)
    return out


def _finished_at(t: Trajectory) -> float | None:
    """Wall-clock end of the episode (unix s), when the records carry one (`finished_at` in the
    trajectory metadata, or `started_at` in turn meta plus that turn's durations); else None."""
    if isinstance(t.metadata.get("finished_at"), int | float):
        return float(t.metadata["finished_at"])
    ends = [
        turn.meta["started_at"] + turn.generate_s + turn.tools_s
        for turn in t.turns
        if isinstance(turn.meta.get("started_at"), int | float)
    ]
    return max(ends) if ends else None


def _run_info(run_dir: Path, manifest: dict, summary: dict, renderer: str | None, decode_note: str) -> dict[str, Any]:
    config = manifest.get("config", {})
    episode = config.get("episode", {})
    return {
        "name": run_dir.resolve().name,
        "dir": str(run_dir.resolve()),
        "started_at": manifest.get("started_at"),
        "resumed_at": manifest.get("resumed_at", []),
        "engine": config.get("engine"),
        "renderer": renderer,
        "tools": config.get("tools"),
        "rewards": config.get("rewards"),
        "samples_per_task": config.get("samples_per_task"),
        "concurrency": config.get("concurrency"),
        "max_turns": episode.get("max_turns"),
        "tool_choice": episode.get("tool_choice"),
        "sampling": episode.get("sampling"),
        "versions": manifest.get("versions", {}),
        "decode_note": decode_note,
        "wall_s": summary.get("wall_s"),
    }


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A run without summary.json (still running, or killed): count what is on disk; no timing."""
    tally = Tally()
    for r in records:
        tally.add(r)
    return summarize(tally, planned=len(records), new_episodes=0, new_tokens=0, wall_s=0.0)


def _runs(mask: list[str]) -> str:
    runs = [f"{m}:{len(list(group))}" for m, group in itertools.groupby(mask)]
    return ",".join(runs)


def _common(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two ID lists."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _text(s: str | None) -> str | None:
    if s is None or len(s) <= MAX_TEXT:
        return s
    return s[:MAX_TEXT] + f"… [{len(s) - MAX_TEXT} more characters in trajectories.jsonl]"


def _clip(obj: Any) -> Any:
    """Metadata as JSON, with long strings clipped (a tool may attach whole documents)."""
    if isinstance(obj, str):
        return _text(obj)
    if isinstance(obj, dict):
        return {str(k): _clip(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clip(v) for v in obj[:50]]
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    return obj


def _round(lp: float | None) -> float | str | None:
    if lp is None:
        return None
    return round(lp, 4) if math.isfinite(lp) else repr(lp)
