"""The run directory: what is on disk is the truth about which episodes are done.

    RUN_DIR/run.json            the manifest: config, start time(s), versions
    RUN_DIR/trajectories.jsonl  one Trajectory.to_dict() per line, appended + fsynced as each episode ends
    RUN_DIR/summary.json        written at the end of each invocation
    RUN_DIR/.lock               held (flock) by the one process writing the run

A SIGKILL can leave at most a torn last line; `open_store` drops and truncates it, so a resumed run
re-runs exactly the episodes whose line is not complete on disk: nothing lost, nothing twice. A second
process opening the same run directory while the first still writes it is refused (the lock), so two
resumes of one run cannot both write the episodes they each found missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentroll.errors import ConfigError
from agentroll.trajectory import Trajectory

TRAJECTORIES = "trajectories.jsonl"
MANIFEST = "run.json"
SUMMARY = "summary.json"
LOCK = ".lock"


class RunStore:
    """Append-only, durable trajectory log of one run directory."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.path = run_dir / TRAJECTORIES
        self._file: Any = None
        self._lock = _lock(run_dir)
        self._closed = False

    def append(self, traj: Trajectory) -> None:
        """Write one line and fsync it before returning: once this returns, the episode survives a crash."""
        if self._closed:  # a straggler after the run ended must not write behind the summary's back
            raise RuntimeError(f"{self.path}: the run store is closed")
        if self._file is None:
            self._file = self.path.open("ab")
        self._file.write(json.dumps(traj.to_dict(), ensure_ascii=False).encode("utf-8") + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._closed = True
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock is not None:
            _HELD.discard(self._lock.fileno())
            self._lock.close()  # releases the flock
            self._lock = None


_HELD: set[int] = set()  # this process's lock file descriptors


def _release_in_child() -> None:
    """A forked child (an engine's worker process) gets copies of the lock's descriptor and would keep the
    lock alive after this process dies; point its copies elsewhere."""
    if _HELD:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in _HELD:
            os.dup2(devnull, fd)
        os.close(devnull)
        _HELD.clear()


os.register_at_fork(after_in_child=_release_in_child)


def _lock(run_dir: Path) -> Any:
    """An exclusive flock on RUN_DIR/.lock for this process, or ConfigError naming the holder."""
    f = (run_dir / LOCK).open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise ConfigError(f"{run_dir} is being written by {holder}; wait for it to end (or stop it)") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}\n")
    f.flush()
    _HELD.add(f.fileno())
    return f


def open_store(
    run_dir: Path, *, resume: bool, overwrite: bool = False, rerun: frozenset[str] = frozenset()
) -> tuple[RunStore, Iterator[dict[str, Any]]]:
    """The store and the records already on disk (none for a fresh run), read lazily: a resumed run of
    100,000 episodes needs their IDs and counts, not every trajectory in memory at once. Read them all
    before the first append: a torn last line is cut off when the reading reaches it.

    A directory that already holds trajectories needs `resume` (finish it) or `overwrite` (start over),
    so a second run never silently mixes with an old one. With `rerun` (stop reasons), the episodes that
    ended so are moved out of the file first (`set_aside`), so the resume runs them again.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    store = RunStore(run_dir)
    try:
        if store.path.exists() and store.path.stat().st_size > 0 and not resume:
            if not overwrite:
                raise ConfigError(
                    f"{run_dir} already holds a run: pass --resume to finish it or --overwrite to replace it"
                )
            store.path.unlink()
        if not store.path.exists():
            return store, iter(())
        if rerun:  # set_aside reads whole lines: the torn end goes first
            for _ in read_records(store.path, repair=True):
                pass
            set_aside(store.path, lambda r: r.get("stop_reason") in rerun)
    except BaseException:
        store.close()
        raise
    return store, read_records(store.path, repair=True)


def read_records(path: Path, *, repair: bool = False) -> Iterator[dict[str, Any]]:
    """Every complete line as a dict, read line by line. A torn last line (no newline, or not JSON) is
    skipped, and with `repair` the file is truncated to its last complete line. A bad line elsewhere is
    an error."""
    good = 0
    with path.open("rb") as f:
        line = f.readline()
        n = 1
        while line:
            after = f.readline()  # one line of lookahead: is this the last one?
            last = not after
            if not line.endswith(b"\n"):
                break  # cut before its end by a crash: the episode was not done
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                if last:
                    break  # torn by a crash mid-write
                raise ConfigError(f"{path}: line {n} is not JSON ({e}); the file was edited or corrupted") from e
            good += len(line)
            yield record
            line, n = after, n + 1
        size = f.seek(0, os.SEEK_END)
    if repair and good < size:
        with path.open("r+b") as t:
            t.truncate(good)
            t.flush()
            os.fsync(t.fileno())


def set_aside(path: Path, moved: Any) -> Path | None:
    """Move the records for which `moved(record)` holds out of `path`, into `path`'s folder as
    `set-aside-<time>.jsonl` (kept, not deleted), line by line. The rewrite is atomic: the new file
    replaces the old one by a rename, so a crash leaves one or the other, whole."""
    archive, aside = _new_archive(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n_aside = 0
    with path.open("rb") as src, tmp.open("wb") as keep, aside:
        for line in src:
            if moved(json.loads(line)):
                aside.write(line)
                n_aside += 1
            else:
                keep.write(line)
        for f in (keep, aside):
            f.flush()
            os.fsync(f.fileno())
    if not n_aside:
        tmp.unlink()
        archive.unlink()
        return None
    os.replace(tmp, path)
    _sync_dir(path.parent)
    return archive


def _new_archive(path: Path) -> tuple[Path, Any]:
    """A set-aside file that did not exist before (never overwrites an earlier one), open for writing."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in itertools.count():
        archive = path.with_name(f"set-aside-{stamp}{f'-{n}' if n else ''}.jsonl")
        try:
            return archive, archive.open("xb")
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _sync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path: Path, obj: Any) -> None:
    """Write atomically (temp file, fsync, rename), so a crash never leaves half a manifest."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _sync_dir(path.parent)
