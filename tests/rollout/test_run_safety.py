"""What keeps a run directory one run: one writer at a time, nothing written after the run ends, no resume
that would play episodes another way, and a file strict JSON readers can read. Real runner, renderer and
calculator; ReplayEngine answers (no model needed)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from agentroll.engines.replay import ReplayEngine
from agentroll.errors import ConfigError, EngineUnavailable
from agentroll.renderers import get_renderer
from agentroll.rollout.config import load_config
from agentroll.rollout.runner import run
from agentroll.rollout.store import open_store, read_records
from agentroll.trajectory import Segment, Trajectory, Turn

EXAMPLE = Path(__file__).parents[2] / "examples" / "gsm8k_calculator.yaml"
ANSWER = [
    *get_renderer("smollm2").tokenizer.encode("The answer is #### 42"),
    get_renderer("smollm2").stop_token_ids()[0],
]


def _config(**overrides):
    return load_config(EXAMPLE, **{"limit": 8, "samples_per_task": 1, "concurrency": 4, **overrides})


def test_a_second_writer_of_the_same_run_directory_is_refused(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path, resume=False)
    with pytest.raises(ConfigError, match=f"pid {os.getpid()}"):
        open_store(tmp_path, resume=True)
    store.close()
    again, _ = open_store(tmp_path, resume=True)  # the lock went with the first writer
    again.close()


def test_a_forked_child_does_not_keep_the_run_locked(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path, resume=False)
    ready, say_ready = os.pipe()
    pid = os.fork()  # as an engine may start its workers
    if pid == 0:
        os.write(say_ready, b"up")  # the fork hooks have run by the time fork() returns here
        time.sleep(3)
        os._exit(0)
    try:
        assert os.read(ready, 2) == b"up"
        store.close()
        again, _ = open_store(tmp_path, resume=True)  # the child still runs, and holds no lock
        again.close()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_nothing_is_written_after_the_store_is_closed(tmp_path: Path) -> None:
    store, _ = open_store(tmp_path, resume=False)
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.append(Trajectory(id="0:0"))
    assert not (tmp_path / "trajectories.jsonl").exists()


def test_an_error_that_stops_a_run_stops_every_worker_before_the_store_closes(tmp_path: Path) -> None:
    class FailsOnce(ReplayEngine):
        """Answers every episode, except that its third call raises (a bug anywhere below the loop)."""

        entered = 0  # calls begun (ReplayEngine counts the ones it answered, which depends on scheduling)

        async def generate(self, prompt_ids, sampling, **kw):
            self.entered += 1
            if self.entered == 3:
                raise ZeroDivisionError("a bug")
            await asyncio.sleep(0.01)  # the other workers are mid-episode when it happens
            return await super().generate(prompt_ids, sampling, **kw)

    out, lines = tmp_path / "run", tmp_path / "run" / "trajectories.jsonl"

    async def caller_goes_on() -> tuple[bytes, bytes]:  # as a notebook or a trainer's loop would
        with pytest.raises(ZeroDivisionError):  # the error itself, not an ExceptionGroup around it
            await run(_config(), out, engine=FailsOnce([ANSWER]), progress=False)
        written = lines.read_bytes() if lines.exists() else b""
        await asyncio.sleep(0.3)  # workers left running would finish their episodes here
        return written, lines.read_bytes() if lines.exists() else b""

    written, after = asyncio.run(caller_goes_on())
    assert after == written and written.count(b"\n") < 8  # the run stopped; nothing trickled in afterwards
    summary = asyncio.run(run(_config(), out, resume=True, engine=ReplayEngine([ANSWER]), progress=False))
    ids = [r["id"] for r in read_records(out / "trajectories.jsonl")]
    assert len(ids) == len(set(ids)) == 8 and summary["episodes"] == 8  # resume finishes it, once each


def test_a_resume_that_would_play_episodes_differently_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    asyncio.run(run(_config(), out, engine=ReplayEngine([ANSWER]), progress=False))
    hotter = _config(episode={"sampling": {"temperature": 0.3}})
    with pytest.raises(ConfigError, match=r"episode\.sampling\.temperature"):
        asyncio.run(run(hotter, out, resume=True, engine=ReplayEngine([ANSWER]), progress=False))
    moved = _config(engine="vllm://127.0.0.1:9", concurrency=2)  # where and how fast: a resume may change these
    summary = asyncio.run(run(moved, out, resume=True, engine=ReplayEngine([ANSWER]), progress=False))
    assert summary["episodes"] == 8 and summary["new_episodes"] == 0


def test_a_setting_added_since_the_run_started_does_not_block_its_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    asyncio.run(run(_config(), out, engine=ReplayEngine([ANSWER]), progress=False))
    manifest = json.loads((out / "run.json").read_text())
    del manifest["config"]["episode"]["sampling"]["min_p"]  # as a run.json written before min_p existed
    (out / "run.json").write_text(json.dumps(manifest))
    summary = asyncio.run(run(_config(), out, resume=True, engine=ReplayEngine([ANSWER]), progress=False))
    assert summary["episodes"] == 8


def test_trajectories_are_strict_json_with_infinite_logprobs_spelled(tmp_path: Path) -> None:
    seg = Segment()
    seg.extend([1, 2], mask=0)
    seg.extend([3, 4], mask=1, logprobs=[-0.5, float("-inf")])
    top = [[(3, -0.5)], [(9, float("-inf"))]]
    turn = Turn(0, 0, 2, [3, 4], [-0.5, float("-inf")], top, "stop")
    traj = Trajectory(id="0:0", segments=[seg], turns=[turn])
    line = json.dumps(traj.to_dict(), allow_nan=False)  # raises on a bare -Infinity
    back = Trajectory.from_dict(json.loads(line))
    assert back.segments[0].logprobs == [None, None, -0.5, float("-inf")]
    assert back.turns[0].top_logprobs[1] == [(9, float("-inf"))]


def test_episodes_that_failed_outside_the_policy_run_again_on_resume_when_asked(tmp_path: Path) -> None:
    class DownAtFirst(ReplayEngine):
        """An engine outage: the first three calls fail."""

        async def generate(self, prompt_ids, sampling, **kw):
            if self.calls < 3:
                self.calls += 1
                raise EngineUnavailable("connection refused")
            return await super().generate(prompt_ids, sampling, **kw)

    out = tmp_path / "run"
    first = asyncio.run(run(_config(), out, engine=DownAtFirst([ANSWER]), progress=False))
    assert first["stop_reasons"].get("engine_error") == 3
    with pytest.raises(ConfigError, match="rerun: only when resuming"):
        asyncio.run(run(_config(), out, rerun=["engine_error"], engine=ReplayEngine([ANSWER]), progress=False))
    again = asyncio.run(
        run(_config(), out, resume=True, rerun=["engine_error"], engine=ReplayEngine([ANSWER]), progress=False)
    )
    records = list(read_records(out / "trajectories.jsonl"))
    assert len(records) == len({r["id"] for r in records}) == 8 and again["new_episodes"] == 3
    assert all(r["stop_reason"] != "engine_error" for r in records)
    (aside,) = out.glob("set-aside-*.jsonl")  # the failed records are kept, out of the run's file
    assert [r["stop_reason"] for r in read_records(aside)] == ["engine_error"] * 3


def test_the_cli_flag_names_the_failures_outside_the_policy_by_default() -> None:
    from agentroll.cli.main import build_parser

    for argv, expected in [
        (["run", "runs/x", "--resume", "--rerun-errors"], "engine_error,timeout,error"),
        (["run", "runs/x", "--resume", "--rerun-errors", "timeout"], "timeout"),
    ]:
        parser, _ = build_parser(argv)
        assert parser.parse_args(argv).rerun_errors == expected
