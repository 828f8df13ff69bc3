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
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
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


async def run_python(
    code: str,
    limits: SandboxLimits = SandboxLimits(),
    *,
    workdir: str | None = None,
    pass_fds: Sequence[int] = (),
    read_only: Sequence[str] = (),
) -> SandboxResult:
    """Run `code` (fed on stdin) in a fresh sandbox and return what it printed and how it ended.

    `workdir`: a directory of the caller's to work in (bound at /work, writable; the caller owns and removes
    it), instead of a fresh empty one; `read_only`: folders in it (relative paths) mounted read-only over
    themselves. `pass_fds`: the caller's file descriptors the code inherits (same numbers), e.g. a memfd that
    only the caller can read afterwards (a channel apart from stdout)."""
    tools = find_tools()
    own = workdir is None
    work = tempfile.mkdtemp(prefix="agentroll-sandbox-") if workdir is None else workdir
    uid = next(_uids)
    try:
        if os.geteuid() == 0:
            _chown_tree(work, uid)
        argv = _command(tools, work, uid, limits, read_only=read_only)
        return await _run(argv, code, limits, pass_fds)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def _chown_tree(root: str, uid: int) -> None:
    os.chown(root, uid, uid)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), uid, uid)


def _command(
    tools: dict[str, str],
    workdir: str,
    uid: int,
    limits: SandboxLimits,
    program: tuple[str, ...] = ("-",),
    read_only: Sequence[str] = (),
) -> list[str]:
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
    for rel in read_only:
        mounts += ["--ro-bind", os.path.join(workdir, rel), os.path.join("/work", rel)]
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
    return [*rlimits, *bwrap, *drop, interpreter, "-I", *program]


async def _run(argv: list[str], code: str, limits: SandboxLimits, pass_fds: Sequence[int] = ()) -> SandboxResult:
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so a kill reaches bwrap and what it started
        pass_fds=tuple(pass_fds),
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


# ---- a session: one sandboxed interpreter whose variables and files live across calls ----------------------

# Runs inside the sandbox. Requests and replies are JSON lines on private copies of stdin/stdout; the code's
# own fds 0/1/2 are /dev/null and two in-memory capture files (memfd), so nothing it prints (os.write and
# child processes included) can reach the protocol. Like a notebook cell, a last expression's repr is printed.
_DRIVER = r"""
import ast, json, os, sys, traceback
requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
replies = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
scope = {"__name__": "__main__", "__builtins__": __builtins__}
cap = int(sys.argv[1])
def read(f):
    f.flush(); f.seek(0); data = f.read(cap + 1); return data[:cap].decode("utf-8", "replace"), len(data) > cap
for line in requests:
    code = json.loads(line)["code"]
    out, err = os.fdopen(os.memfd_create("stdout"), "w+b"), os.fdopen(os.memfd_create("stderr"), "w+b")
    sys.stdout.flush(); sys.stderr.flush()
    os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
    ok = True
    try:
        tree = ast.parse(code, "<cell>")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<cell>", "exec"), scope)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), scope)
            if value is not None:
                print(repr(value))
    except BaseException as e:
        ok = False
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)  # from the cell's frame, not this one's
    sys.stdout.flush(); sys.stderr.flush()
    (o, o_cut), (e, e_cut) = read(out), read(err)
    replies.write(json.dumps({"ok": ok, "stdout": o, "stderr": e, "truncated": o_cut or e_cut}) + "\n")
"""


@dataclass(slots=True)
class CellResult:
    ok: bool  # False: the code raised (its traceback is in stderr) or the session was killed
    stdout: str
    stderr: str
    truncated: bool
    duration_s: float
    killed: str | None = None  # why the session was killed during this call (its state is gone)


class PythonSession:
    """One sandboxed interpreter (the same isolation as `run_python`) whose variables and files persist across
    `run` calls until `close`. `limits.timeout_s` bounds each call; `cpu_s` and `memory_mb` the whole session.
    A call that times out or dies kills the session; the next call starts a fresh one (and says so).

        async with PythonSession() as py:
            await py.run("x = 41")
            (await py.run("x + 1")).stdout  # "42\n"
    """

    def __init__(self, limits: SandboxLimits = SandboxLimits(cpu_s=60)):
        self.limits = limits
        self.workdir: str | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._lost = False  # the last session was killed: tell the next call its state is gone

    async def __aenter__(self) -> PythonSession:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        tools = find_tools()
        self.workdir = tempfile.mkdtemp(prefix="agentroll-session-")
        uid = next(_uids)
        if os.geteuid() == 0:
            os.chown(self.workdir, uid, uid)
        argv = _command(tools, self.workdir, uid, self.limits, ("-c", _DRIVER, str(self.limits.max_output_bytes)))
        self._proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True, limit=4 * self.limits.max_output_bytes + 65536,
        )  # fmt: skip

    async def run(self, code: str) -> CellResult:
        """Run `code` in the session; its stdout/stderr (capped) and whether it raised."""
        if self._proc is None or self._proc.returncode is not None:
            await self._restart()
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        note = "(the previous session was killed; its variables and files are gone)\n" if self._lost else ""
        self._lost = False
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                proc.stdin.write((json.dumps({"code": code}) + "\n").encode())
                await proc.stdin.drain()
                line = await proc.stdout.readline()
        except TimeoutError:
            return await self._killed(f"wall-clock limit of {self.limits.timeout_s:g} s reached", start)
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        if not line:  # the interpreter died: a CPU-time or memory limit, or os._exit
            await proc.wait()
            return await self._killed(f"the interpreter exited ({proc.returncode})", start)
        reply = json.loads(line)
        return CellResult(reply["ok"], note + reply["stdout"], reply["stderr"], reply["truncated"],
                          time.perf_counter() - start)  # fmt: skip

    async def _killed(self, why: str, start: float) -> CellResult:
        await self._stop()
        self._lost = True
        return CellResult(False, "", "", False, time.perf_counter() - start, killed=why)

    async def _restart(self) -> None:
        await self.close()
        await self.start()

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            _kill_group(proc.pid)
            await proc.wait()

    async def close(self) -> None:
        """Kill the interpreter (and everything it started) and delete its working directory. Idempotent."""
        await self._stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None
