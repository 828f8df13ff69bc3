"""`environment: repo_task`: a small SWE-style task. Each episode gets its own copy of a repository (a git
repository, committed, so the agent's edits are a diff), tools to list, read and write its files and to
run its tests, and the reward is its tests passing, run in the bubblewrap sandbox after the episode.

    dataset: {path: data/repo_tasks.jsonl, id_field: id}      # rows: question, repo (a folder under `repos`)
    environment: repo_task
    environment_options: {repos: examples/repos, max_concurrent: 4}

A repository's tests are stdlib `unittest` files under tests/ (the sandbox runs the base interpreter, not
the run's virtual environment). The file tools cannot leave the copy (paths are resolved inside it, links
out of it refused). Rewards: `env:tests_passed` (the share of tests that pass) and `env:all_passed`;
`metadata["repo_task"]` holds the counts and the diff. Teardown deletes the copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
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

# Run inside the sandbox at /work (the copy): discover tests/ and print the counts as one JSON line.
_RUN_TESTS = """
import io, json, sys, unittest
sys.path.insert(0, "/work")
suite = unittest.defaultTestLoader.discover("/work/tests")
log = io.StringIO()
result = unittest.TextTestRunner(stream=log, verbosity=1).run(suite)
print(json.dumps({"run": result.testsRun, "failed": len(result.failures), "errors": len(result.errors),
                  "log": log.getvalue()[-2000:]}))
"""
MAX_FILE_BYTES = 64_000


@dataclass
class RepoEpisode(ToolEnvironment):
    root: Path
    limits: SandboxLimits
    tools: Toolset | None = None
    messages: Sequence[Message] | None = None

    def path(self, relative: str) -> Path:
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
        counts = await self.test_counts()
        passed = max(0, counts["run"] - counts["failed"] - counts["errors"])
        return ToolOutput(f"{passed} of {counts['run']} tests pass\n{counts['log']}".rstrip(),
                          metadata={k: v for k, v in counts.items() if k != "log"})  # fmt: skip

    async def test_counts(self) -> dict[str, Any]:
        result = await run_python(_RUN_TESTS, self.limits, workdir=str(self.root))
        try:
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):  # the tests could not even be collected
            return {"run": 0, "failed": 0, "errors": 1, "log": (result.stderr or result.stdout)[-2000:]}

    async def score(self, task: Task, traj: Trajectory) -> dict[str, float]:
        counts = await self.test_counts()
        passed = max(0, counts["run"] - counts["failed"] - counts["errors"])
        diff = subprocess.run([*GIT, "diff"], cwd=self.root, capture_output=True, text=True).stdout
        traj.metadata["repo_task"] = {**{k: v for k, v in counts.items() if k != "log"}, "passed": passed,
                                      "diff": diff[:MAX_FILE_BYTES]}  # fmt: skip
        share = passed / counts["run"] if counts["run"] else 0.0
        return {"tests_passed": share, "all_passed": float(counts["run"] > 0 and passed == counts["run"])}

    async def teardown(self) -> None:
        shutil.rmtree(self.root.parent, ignore_errors=True)


class RepoTask:
    """A per-episode copy of a small git repository, tools to read, edit and test it; reward = its tests passing."""

    name = "repo_task"

    def __init__(self, repos: str = "examples/repos", max_concurrent: int | None = 4, timeout_s: float = 30.0):
        self.repos = Path(repos).resolve()
        self.max_concurrent = max_concurrent
        self.limits = SandboxLimits(timeout_s=timeout_s, cpu_s=int(timeout_s))

    async def setup(self, task: Task, episode_id: str) -> RepoEpisode:
        name = task.metadata.get("row", {}).get("repo")
        source = self.repos / str(name)
        if not name or not source.is_dir():
            raise ConfigError(f"task {task.id}: repo_task needs a row field `repo` naming a folder of {self.repos}")
        root = Path(tempfile.mkdtemp(prefix="agentroll-repo-")) / "repo"
        shutil.copytree(source, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _commit(root)
        episode = RepoEpisode(root, self.limits)
        tools = [function_tool(f, inline=True) for f in (episode.list_files, episode.read_file, episode.write_file)]
        episode.tools = Toolset([*tools, function_tool(episode.run_tests, timeout_s=self.limits.timeout_s + 10)])
        return episode


# The copy's files belong to the sandbox's uid once its tests have run: git must not refuse the directory.
GIT = ["git", "-c", "safe.directory=*", "-c", "user.name=agentroll", "-c", "user.email=agentroll@localhost",
       "-c", "init.defaultBranch=main"]  # fmt: skip


def _commit(root: Path) -> None:
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "task"]):
        subprocess.run([*GIT, *args], cwd=root, check=True, capture_output=True)
