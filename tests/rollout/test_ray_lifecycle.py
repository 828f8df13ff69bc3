"""What `--ray` does with the run config's environment and staleness settings, on a real local Ray instance:
a factory that holds something for the whole run (RunScoped: a simulated user's own engine) is started on
every worker before its first episode and closed at the end; `max_staleness`, which a worker cannot measure,
is refused before anything runs instead of being ignored."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentroll.agent import Task
from agentroll.agent.lifecycle import ToolEpisode
from agentroll.errors import ConfigError
from agentroll.rollout.config import config_from_dict
from agentroll.rollout.runner import run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray not installed: pip install ray==2.60.0"),
]
GSM8K = Path(__file__).parents[2] / "examples" / "data" / "gsm8k" / "test.jsonl"
NOWHERE = "vllm://127.0.0.1:9"  # no server: each episode fails fast and is recorded (engine_error); setup still runs


@dataclass
class MarksItsLife:
    """A run-scoped factory that leaves a file per event in `dir`, named by event and worker PID."""

    dir: str
    name: str = "marks_its_life"
    max_concurrent: int | None = None
    started: bool = False

    def _mark(self, event: str) -> None:
        (Path(self.dir) / f"{event}-{os.getpid()}").touch()

    async def start(self) -> None:
        self.started = True
        self._mark("start")

    async def aclose(self) -> None:
        self._mark("close")

    async def setup(self, task: Task, episode_id: str) -> ToolEpisode:
        self._mark("setup" if self.started else "setup_before_start")
        return ToolEpisode()


def _config(tmp_path: Path, **extra: Any) -> Any:
    return config_from_dict({"dataset": {"path": str(GSM8K), "limit": 4}, "engine": NOWHERE, "concurrency": 4,
                             "base_dir": str(tmp_path), **extra})  # fmt: skip


def test_a_run_scoped_environment_is_started_and_closed_once_on_every_ray_worker(loop: Any, tmp_path: Path) -> None:
    from agentroll.rollout.ray_executor import RayExecutor

    marks = tmp_path / "marks"
    marks.mkdir()
    config = _config(tmp_path, environment=f"{__name__}:MarksItsLife", environment_options={"dir": str(marks)})
    executor = RayExecutor(config, workers=2, hang_timeout_s=None)
    summary = loop.run(run(config, tmp_path / "run", executor=executor, progress=False), timeout=600)
    assert summary["episodes"] == 4
    events = sorted(p.name for p in marks.iterdir())
    pids = {name.split("-")[1] for name in events}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # the two workers, not the driver
    for pid in pids:
        assert f"start-{pid}" in events and f"close-{pid}" in events
    assert not [e for e in events if e.startswith("setup_before_start")]
    assert len([e for e in events if e.startswith("setup-")]) >= 1  # files are per PID: a worker's many setups are one


def test_max_staleness_on_ray_is_refused_before_any_episode_runs(loop: Any, tmp_path: Path) -> None:
    from agentroll.rollout.ray_executor import RayExecutor

    config = _config(tmp_path, max_staleness=1, on_stale="rerun")
    with pytest.raises(ConfigError, match="max_staleness is not enforced on Ray"):
        executor = RayExecutor(config, workers=1, hang_timeout_s=None)
        loop.run(run(config, tmp_path / "run", executor=executor, progress=False), timeout=600)
    assert not (tmp_path / "run" / "trajectories.jsonl").exists()  # refused before the run directory was opened
