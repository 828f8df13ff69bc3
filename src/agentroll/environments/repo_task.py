"""`environment: repo_task`: a small SWE-style task. Each episode gets its own copy of a repository, tools to
list, read and write its files and to run its tests, and the reward is the task's tests passing, run in the
bubblewrap sandbox after the episode.

    dataset: {path: data/repo_tasks.jsonl, id_field: id}      # rows: question, repo (a folder under `repos`)
    environment: repo_task
    environment_options: {repos: examples/repos, max_concurrent: 4}

A repository's tests are stdlib `unittest` files under tests/ (the sandbox runs the base interpreter, not
the run's virtual environment). The file tools cannot leave the copy (paths are resolved inside it, links
out of it refused). Rewards: `env:tests_passed` (the share of tests that pass) and `env:all_passed`;
`metadata["repo_task"]` holds the counts, the test log's tail and the diff. Teardown deletes the copy.

The score cannot be talked into a pass by the episode: it runs the task's pristine tests (from `repos`, not
the copy's tests/, which the agent may edit or delete) on the copy's other files, in a fresh folder, and
reads the counts from a memfd that the harness holds (with a nonce the episode never sees), not from the
output of a process that runs the agent's code: prints, atexit handlers, os._exit and skips count for
nothing; the pristine tests are mounted read-only, and the file tools wait while the copy's code runs. The
agent's code still runs inside the test process, so code written to patch the test runner or the assertions
from within (e.g. replacing unittest.TestCase.assertEqual) is not caught (docs/environments.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentroll.agent.environment import ToolEnvironment
from agentroll.agent.task import Task
from agentroll.errors import ConfigError, ToolError
from agentroll.tools import Toolset
from agentroll.tools.base import ToolOutput, function_tool
from agentroll.tools.sandbox import SandboxLimits, run_python
from agentroll.trajectory import Trajectory
from agentroll.types import Message

# Runs inside the sandbox at /work: discover tests/ and write the counts, with the harness's nonce, to the report
# fd (a memfd the harness reads afterwards). The functions it needs are bound before any of the repository's code
# is imported, and it ends with os._exit: no atexit handler or leftover thread of that code runs after the report.
_RUN_TESTS = """
import io, json, os, sys, unittest
_truncate, _pwrite, _exit, _dumps = os.ftruncate, os.pwrite, os._exit, json.dumps
sys.path.insert(0, "/work")
log = io.StringIO()
try:
    result = unittest.TextTestRunner(stream=log, verbosity=1).run(unittest.defaultTestLoader.discover("/work/tests"))
    counts = {"run": result.testsRun, "failed": len(result.failures), "errors": len(result.errors),
              "skipped": len(result.skipped), "unexpected_successes": len(result.unexpectedSuccesses)}
except BaseException as e:
    counts = {"run": 0, "failed": 0, "errors": 1, "skipped": 0, "unexpected_successes": 0}
    log.write(f"{type(e).__name__}: {e}")
_truncate(@FD@, 0)
_pwrite(@FD@, _dumps({**counts, "nonce": "@NONCE@", "log": log.getvalue()[-2000:]}).encode(), 0)
_exit(0)
"""
COUNTS = ("run", "failed", "errors", "skipped", "unexpected_successes")
MAX_FILE_BYTES = 64_000
MAX_REPORT_BYTES = 64_000


async def run_tests(workdir: Path, limits: SandboxLimits, *, tests_read_only: bool = False) -> dict[str, Any]:
    """Run the unittest suite under `workdir`/tests in the sandbox (`workdir` at /work): its counts and log tail.
    A run that ends without its report (it exited early, timed out, died) counts as one error and no test.
    `tests_read_only`: tests/ is mounted read-only (the code under test cannot rewrite a test not yet loaded)."""
    nonce = secrets.token_hex(16)
    report = os.memfd_create("agentroll-test-report")
    try:
        code = _RUN_TESTS.replace("@FD@", str(report)).replace("@NONCE@", nonce)
        ro = ("tests",) if tests_read_only else ()
        result = await run_python(code, limits, workdir=str(workdir), pass_fds=(report,), read_only=ro)
        counts = _read_report(os.pread(report, MAX_REPORT_BYTES, 0), nonce)
    finally:
        os.close(report)
    if counts is None:
        how = "timed out" if result.timed_out else f"exited with status {result.exit_code}"
        output = (result.stderr or result.stdout)[-1500:]
        return {**dict.fromkeys(COUNTS, 0), "errors": 1, "log": f"no test report: the test process {how}\n{output}"}
    return counts


def _read_report(data: bytes, nonce: str) -> dict[str, Any] | None:
    try:
        report = json.loads(data)
    except ValueError:
        return None
    valid = isinstance(report, dict) and report.get("nonce") == nonce
    if not valid or not all(type(report.get(k)) is int and report[k] >= 0 for k in COUNTS):
        return None
    return {**{k: report[k] for k in COUNTS}, "log": str(report.get("log", ""))}


def passed(counts: dict[str, Any]) -> int:
    """Tests that ran and passed: a skip (which the code under test can raise) is not a pass."""
    return max(0, counts["run"] - sum(counts[k] for k in COUNTS if k != "run"))


@dataclass
class RepoEpisode(ToolEnvironment):
    root: Path  # the episode's copy (what the agent edits; /work in the sandbox while its tests run)
    pristine: Path  # the task's own tests/ (never shown to the sandbox as writable)
    git_dir: Path  # the copy's repository, outside it: nothing the agent's code writes configures git
    limits: SandboxLimits
    tools: Toolset | None = None
    messages: Sequence[Message] | None = None
    testing: bool = False  # run_tests is running the copy's code

    def path(self, relative: str) -> Path:
        if self.testing:
            raise ToolError("the tests are running: call the file tools after run_tests has answered")
        p = (self.root / relative).resolve()
        if p != self.root and self.root not in p.parents:
            raise ToolError(f"{relative}: outside the repository")
        return p

    def list_files(self) -> str:
        """List the repository's files (paths relative to its root)."""
        files = sorted(
            str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file() and ".git" not in p.parts
        )
        return "\n".join(files)

    def read_file(self, path: str) -> str:
        """Read one file of the repository.

        Args:
            path: the file's path relative to the repository root, e.g. "src/app.py".
        """
        p = self.path(path)
        if not p.is_file():
            raise ToolError(f"{path}: no such file")
        return p.read_text(encoding="utf-8", errors="replace")[:MAX_FILE_BYTES]

    def write_file(self, path: str, content: str) -> str:
        """Replace a file's whole content (or create it).

        Args:
            path: the file's path relative to the repository root.
            content: the complete new content of the file.
        """
        p = self.path(path)
        if len(content.encode()) > MAX_FILE_BYTES:
            raise ToolError(f"{path}: content over {MAX_FILE_BYTES} bytes")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content, encoding="utf-8")
        return f"wrote {path} ({len(content)} characters)"

    async def run_tests(self) -> ToolOutput:
        """Run the repository's tests and report how many pass."""
        self.testing = True  # the copy's code runs now: the file tools wait (it could swap a folder for a link)
        try:
            counts = await run_tests(self.root, self.limits)  # the copy as it is, its own tests/ included
        finally:
            self.testing = False
        return ToolOutput(f"{passed(counts)} of {counts['run']} tests pass\n{counts['log']}".rstrip(),
                          metadata={k: counts[k] for k in COUNTS})  # fmt: skip

    async def score(self, task: Task, traj: Trajectory) -> dict[str, float]:
        scored = Path(tempfile.mkdtemp(prefix="score-", dir=self.root.parent))
        try:
            counts = await self._pristine_tests_in(scored)
        finally:
            await asyncio.to_thread(shutil.rmtree, scored, ignore_errors=True)
        ok = passed(counts)
        diff = await asyncio.to_thread(self.diff)  # off the loop: the other episodes go on meanwhile
        traj.metadata["repo_task"] = {**{k: counts[k] for k in COUNTS}, "passed": ok, "log": counts["log"],
                                      "diff": diff[:MAX_FILE_BYTES]}  # fmt: skip
        share = ok / counts["run"] if counts["run"] else 0.0
        return {"tests_passed": share, "all_passed": float(counts["run"] > 0 and ok == counts["run"])}

    async def _pristine_tests_in(self, dest: Path) -> dict[str, Any]:
        """Run the task's pristine tests/ on the copy's other files, copied to `dest`. Files the episode left that
        cannot be copied (no permission, paths too deep) fail its tests: a score that raised would be no reward
        (None), which an episode must not be able to choose over a 0."""
        try:
            await asyncio.to_thread(
                shutil.copytree, self.root, dest, symlinks=True, ignore=_not_scored(self.root), dirs_exist_ok=True
            )
        except (OSError, shutil.Error) as e:
            return {**dict.fromkeys(COUNTS, 0), "errors": 1, "log": f"the episode's files cannot be copied: {e}"[:2000]}
        shutil.copytree(self.pristine, dest / "tests", symlinks=True)
        return await run_tests(dest, self.limits, tests_read_only=True)

    def diff(self) -> str:
        """The episode's edits against the task's files (new files included)."""
        git = [*GIT, f"--git-dir={self.git_dir}", f"--work-tree={self.root}"]
        subprocess.run([*git, "add", "-A"], cwd=self.git_dir, capture_output=True)
        return subprocess.run([*git, "diff", "--cached", "--no-ext-diff", "--no-textconv"], cwd=self.git_dir,
                              capture_output=True, text=True, errors="replace").stdout  # fmt: skip

    async def teardown(self) -> None:
        shutil.rmtree(self.root.parent, ignore_errors=True)


def _not_scored(root: Path) -> Callable[[str, list[str]], set[str]]:
    """What the scoring copy leaves out: the copy's tests/ (the pristine ones replace them), caches, and anything
    that is not a file, folder or link (a FIFO the agent's code made would block the copy)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = {"tests", ".git"} if Path(folder) == root else set()
        kept = (stat.S_ISREG, stat.S_ISDIR, stat.S_ISLNK)
        odd = {n for n in names if not any(is_kind(os.lstat(os.path.join(folder, n)).st_mode) for is_kind in kept)}
        return top | odd | {n for n in names if n == "__pycache__" or n.endswith(".pyc")}

    return ignore


class RepoTask:
    """A per-episode copy of a small git repository, tools to read, edit and test it; reward = its tests passing."""

    name = "repo_task"
    reward_names = ("tests_passed", "all_passed")

    def __init__(self, repos: str = "examples/repos", max_concurrent: int | None = 4, timeout_s: float = 30.0):
        self.repos = Path(repos).resolve()
        self.max_concurrent = max_concurrent
        self.limits = SandboxLimits(timeout_s=timeout_s, cpu_s=int(timeout_s))

    async def setup(self, task: Task, episode_id: str) -> RepoEpisode:
        name = task.metadata.get("row", {}).get("repo")
        source = self.repos / str(name)
        if not name or not (source / "tests").is_dir():
            raise ConfigError(
                f"task {task.id}: repo_task needs a row field `repo` naming a folder of {self.repos} with tests/"
            )
        base = Path(tempfile.mkdtemp(prefix="agentroll-repo-"))
        root, git_dir = base / "repo", base / "git"
        shutil.copytree(source, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _commit(root, git_dir)
        episode = RepoEpisode(root, source / "tests", git_dir, self.limits)
        tools = [function_tool(f, inline=True) for f in (episode.list_files, episode.read_file, episode.write_file)]
        episode.tools = Toolset([*tools, function_tool(episode.run_tests, timeout_s=self.limits.timeout_s + 10)])
        return episode


# The copy's files belong to the sandbox's uid once its tests have run: git must not refuse the work tree.
GIT = ["git", "-c", "safe.directory=*", "-c", "user.name=agentroll", "-c", "user.email=agentroll@localhost",
       "-c", "init.defaultBranch=main"]  # fmt: skip


def _commit(root: Path, git_dir: Path) -> None:
    git = [*GIT, f"--git-dir={git_dir}", f"--work-tree={root}"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "task"]):
        subprocess.run([*git, *args], cwd=root.parent, check=True, capture_output=True)
