"""Run untrusted Python in a bubblewrap sandbox: no host files, no network, bounded CPU/memory/processes.

The layers, each for a reason:
- bwrap: a fresh mount namespace holding only read-only /usr and the interpreter's own
  prefix, a private /tmp, and one writable per-run work directory; new pid, net, ipc
  and uts namespaces (so no host process, no host loopback service is reachable).
- rlimits via `prlimit` (no preexec_fn: it is unsafe in a threaded parent): address
  space, CPU seconds, file size, and process count.
- As root the kernel ignores RLIMIT_NPROC, so the code runs under an unprivileged uid
  of its own (setpriv, capabilities and new privileges dropped); each concurrent run gets
  a different uid, so one run's fork bomb cannot use up another's process budget.
- A wall-clock timeout kills bwrap's process group; --die-with-parent and the pid
  namespace take every process the code started down with it.
- stdout/stderr are read to a cap and the rest is drained and dropped.
Without bwrap nothing runs: the caller gets an error result, never an unsandboxed run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass

from agentroll.errors import ToolUnavailable

_UID_BASE = 420_000  # far above any login account; the kernel needs no passwd entry
_uids = itertools.cycle(range(_UID_BASE, _UID_BASE + 4096))


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per-run limits. `max_processes` counts threads too (that is how RLIMIT_NPROC works)."""

    timeout_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512
    max_processes: int = 32
    max_file_mb: int = 16
    max_output_bytes: int = 8192


@dataclass(slots=True)
class SandboxResult:
    exit_code: int | None  # None when killed at the wall-clock timeout
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    duration_s: float


def find_tools() -> dict[str, str]:
    """Paths of the programs the sandbox needs; raises ToolUnavailable naming what is missing."""
    names = ["bwrap", "prlimit"] + (["setpriv"] if os.geteuid() == 0 else [])
    found = {n: shutil.which(n) for n in names}
    missing = [n for n, path in found.items() if path is None]
    if missing:
        raise ToolUnavailable(
            f"python sandbox unavailable: {', '.join(missing)} not found (install bubblewrap and util-linux);"
            " refusing to run code unsandboxed"
        )
    return {n: p for n, p in found.items() if p is not None}


async def run_python(code: str, limits: SandboxLimits = SandboxLimits()) -> SandboxResult:
    """Run `code` (fed on stdin) in a fresh sandbox and return what it printed and how it ended."""
    tools = find_tools()
    workdir = tempfile.mkdtemp(prefix="agentroll-sandbox-")
    uid = next(_uids)
    try:
        if os.geteuid() == 0:
            os.chown(workdir, uid, uid)
        argv = _command(tools, workdir, uid, limits)
        return await _run(argv, code, limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _command(tools: dict[str, str], workdir: str, uid: int, limits: SandboxLimits) -> list[str]:
    interpreter = os.path.realpath(sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    mb = 1024 * 1024
    rlimits = [
        tools["prlimit"],
        f"--as={limits.memory_mb * mb}",
        f"--cpu={limits.cpu_s}",
        f"--nproc={limits.max_processes}",
        f"--fsize={limits.max_file_mb * mb}",
        "--core=0",
        "--",
    ]
    namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if os.geteuid() != 0:
        namespaces.append("--unshare-user")  # unprivileged bwrap needs a user namespace
    mounts = ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{link}"):
            mounts += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
    if not prefix.startswith("/usr/"):
        mounts += ["--ro-bind", prefix, prefix]
    mounts += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", workdir, "/work", "--chdir", "/work"]
    env = [
        "--clearenv",
        "--setenv",
        "HOME",
        "/work",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "LANG",
        "C.UTF-8",
    ]
    bwrap = [tools["bwrap"], *namespaces, "--die-with-parent", "--new-session", *mounts, *env]
    if os.geteuid() == 0:  # keep only what setpriv needs to leave root, then drop everything
        bwrap += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        drop = [
            tools["setpriv"],
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ]
    else:
        drop = []
    return [*rlimits, *bwrap, *drop, interpreter, "-I", "-"]


async def _run(argv: list[str], code: str, limits: SandboxLimits) -> SandboxResult:
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so a kill reaches bwrap and what it started
    )
    cap = limits.max_output_bytes
    readers = [asyncio.ensure_future(_read_capped(s, cap)) for s in (proc.stdout, proc.stderr)]
    timed_out = False
    try:
        async with asyncio.timeout(limits.timeout_s):
            await _feed(proc, code)
            await proc.wait()
    except TimeoutError:
        timed_out = True
    except BaseException:  # our caller was cancelled: nobody will read the output
        for reader in readers:
            reader.cancel()
        raise
    finally:
        if proc.returncode is None:  # timed out or cancelled: take the whole tree down
            _kill_group(proc.pid)
            await proc.wait()
    (out, out_cut), (err, err_cut) = await asyncio.gather(*readers)
    return SandboxResult(
        exit_code=None if timed_out else proc.returncode,
        stdout=out,
        stderr=err,
        timed_out=timed_out,
        truncated=out_cut or err_cut,
        duration_s=time.perf_counter() - start,
    )


async def _feed(proc: asyncio.subprocess.Process, code: str) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(code.encode())
        await proc.stdin.drain()
        proc.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the sandbox died before reading its code; its exit status says why


async def _read_capped(stream: asyncio.StreamReader | None, cap: int) -> tuple[str, bool]:
    """Keep the first `cap` bytes; drain the rest so the writer never blocks on a full pipe."""
    kept = bytearray()
    truncated = False
    assert stream is not None
    while chunk := await stream.read(65536):
        room = cap - len(kept)
        if len(chunk) > room:
            truncated = True
        kept += chunk[: max(room, 0)]
    return kept.decode("utf-8", errors="replace"), truncated


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
