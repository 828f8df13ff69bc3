"""A rich progress bar on stderr: episodes done/total, sampled tokens/s, mean reward, errors."""

from __future__ import annotations

import sys
import time
from typing import Any

from agentroll.rollout.summary import Tally


class Progress:
    """Call `advance(tally, new_tokens)` after each episode; `close()` at the end. Disabled: does nothing."""

    def __init__(self, total: int, done: int, *, enabled: bool = True):
        self.started = time.monotonic()
        self.tokens = 0
        self._bar: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("episodes"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} tok/s  reward {task.fields[reward]}  errors {task.fields[errors]}"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
        )
        self._task = self._bar.add_task("run", total=total, completed=done, rate="-", reward="-", errors=0)
        self._bar.start()

    def advance(self, tally: Tally, new_tokens: int) -> None:
        self.tokens += new_tokens
        if self._bar is None:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        mean = tally.mean_reward()
        self._bar.update(
            self._task,
            advance=1,
            rate=f"{self.tokens / elapsed:.0f}",
            reward="-" if mean is None else f"{mean:.3f}",
            errors=tally.errors,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
