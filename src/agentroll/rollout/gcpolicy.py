"""Fewer garbage-collector passes while episodes run.

CPython starts a collection pass every 700 net new container objects. A turn of the loop makes
hundreds (messages, parsed calls, records, asyncio bookkeeping), nearly all freed at once by
reference counting, so most passes find nothing, yet each one walks every young object, and every
tenth pass also the older ones: the live episodes' token lists. On the P2 workload (see
docs/bench.md) the default threshold cost about a third of the loop's time. A threshold of
20,000 objects keeps that cost small; cyclic garbage is still collected, a little later.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

RUN_THRESHOLD = 20_000


@contextlib.contextmanager
def fewer_gc_passes(threshold: int = RUN_THRESHOLD) -> Iterator[None]:
    """Raise the youngest generation's threshold for the block; the previous thresholds come back after."""
    previous = _raise_threshold(threshold)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def use_run_threshold() -> None:
    """For a process that only runs episodes (a Ray worker): the run threshold for its whole life."""
    _raise_threshold(RUN_THRESHOLD)


def _raise_threshold(threshold: int) -> tuple[int, ...]:
    """Set the youngest generation's threshold to at least `threshold`; returns the thresholds before."""
    previous = gc.get_threshold()
    gc.set_threshold(max(threshold, previous[0]), *previous[1:])
    return previous
