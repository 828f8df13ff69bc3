"""The repository task: each episode edits its own copy of a small git repository, the tests run in the
sandbox, the reward is the share of tests passing, and teardown deletes the copy. Checked on the three
repositories under examples/repos with their real bugs and fixes, and on the embedded engine."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from agentroll.agent.task import Task
from agentroll.environments.repo_task import RepoTask
from agentroll.rollout.config import load_config
from agentroll.rollout.runner import run
from agentroll.rollout.store import read_records
from agentroll.trajectory import Trajectory
from agentroll.types import Message, ToolCall

from ..tools.conftest import requires_bwrap

pytestmark = requires_bwrap
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REPOS = EXAMPLES / "repos"
FIXES = {  # (file, broken text, fixed text): the one-line bug of each repository
    "fizzbuzz": ("fizzbuzz.py", None, None),
    "wordcount": ("wordcount.py", 'text.split(" ")', "text.split()"),
    "temperature": ("temperature.py", "9 / 5 + 23", "9 / 5 + 32"),
}
FIZZBUZZ = """def fizzbuzz(n: int) -> str:
    if n % 15 == 0:
        return "FizzBuzz"
    if n % 3 == 0:
        return "Fizz"
    if n % 5 == 0:
        return "Buzz"
    return str(n)
"""


def _task(repo: str) -> Task:
    return Task(id=repo, messages=(Message(role="user", content="fix it"),), metadata={"row": {"repo": repo}})


async def _call(ep, name: str, **arguments):
    return await ep.tools.call(ToolCall(id="c", name=name, arguments=arguments))


@pytest.mark.parametrize("repo", sorted(FIXES))
def test_a_fix_makes_every_test_pass_in_its_own_copy_and_teardown_deletes_it(repo):
    env = RepoTask(repos=str(REPOS))

    async def go():
        fixed, untouched = await env.setup(_task(repo), f"{repo}:0"), await env.setup(_task(repo), f"{repo}:1")
        before = await fixed.score(_task(repo), Trajectory(id="b"))
        path, broken, good = FIXES[repo]
        text = (
            FIZZBUZZ if broken is None else (await _call(fixed, "read_file", path=path)).content.replace(broken, good)
        )
        await _call(fixed, "write_file", path=path, content=text)
        report = await _call(fixed, "run_tests")
        traj, other = Trajectory(id="a"), Trajectory(id="u")
        after, still = await fixed.score(_task(repo), traj), await untouched.score(_task(repo), other)
        roots = (fixed.root, untouched.root)
        await fixed.teardown()
        await untouched.teardown()
        return before, report, after, still, traj, roots

    before, report, after, still, traj, roots = asyncio.run(go())
    assert before["all_passed"] == 0.0 and 0.0 <= before["tests_passed"] < 1.0
    assert not report.is_error and report.content.startswith("3 of 3 tests pass")
    assert after == {"tests_passed": 1.0, "all_passed": 1.0}
    assert still == before  # the other sample's copy never saw the fix
    assert traj.metadata["repo_task"]["diff"].startswith("diff --git")
    assert not any(os.path.exists(r) for r in roots)


def test_the_file_tools_cannot_leave_the_copy():
    env = RepoTask(repos=str(REPOS))

    async def go():
        ep = await env.setup(_task("wordcount"), "w:0")
        os.symlink("/etc", ep.root / "out")
        results = [await _call(ep, "read_file", path="../../../etc/hostname"),
                   await _call(ep, "read_file", path="out/hostname"),
                   await _call(ep, "write_file", path="/tmp/evil", content="x")]  # fmt: skip
        await ep.teardown()
        return results

    for r in asyncio.run(go()):
        assert r.is_error and "outside the repository" in r.content


# A red team of episodes that try to pass without fixing wordcount.py (whose bug fails 2 of its 3 tests), each
# done the way an agent can: files written with write_file, its code run by the run_tests tool, then the score.
BROKEN = 'def count_words(text: str) -> int:\n    return len(text.split(" "))\n'
FIXED = BROKEN.replace('split(" ")', "split()")
FAKE = '{"run": 3, "failed": 0, "errors": 0, "skipped": 0, "unexpected_successes": 0, "nonce": "?", "log": ""}'
TRIVIAL_TESTS = "import unittest\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        pass\n"
GAMES = {
    "rewrites_the_tests": {"tests/test_wordcount.py": TRIVIAL_TESTS * 3},
    "deletes_the_tests": {"wordcount.py": BROKEN + "import shutil\nshutil.rmtree('/work/tests', ignore_errors=True)\n"},
    "adds_passing_tests": {"tests/test_more.py": TRIVIAL_TESTS, "tests/__init__.py": ""},
    "prints_fake_counts_at_exit": {"wordcount.py": BROKEN + f"import atexit\natexit.register(print, {FAKE!r})\n"},
    "prints_fake_counts_then_exits": {
        "wordcount.py": BROKEN + f"import os, sys\nprint({FAKE!r})\nsys.stdout.flush()\nos._exit(0)\n"
    },
    "exits_before_the_report": {"wordcount.py": BROKEN + "import os\nos._exit(0)\n"},
    "skips_every_test": {"wordcount.py": BROKEN + "import unittest\nraise unittest.SkipTest('later')\n"},
    "writes_fake_reports_to_every_fd": {
        "wordcount.py": BROKEN + "import os\nfor fd in range(3, 256):\n    try:\n"
        f"        os.write(fd, {FAKE!r}.encode())\n    except OSError:\n        pass\nos._exit(0)\n"
    },
}
HONEST = {
    "fixes_it": {"wordcount.py": FIXED},
    "fixes_it_and_rewrites_the_tests": {"wordcount.py": FIXED, "tests/test_wordcount.py": TRIVIAL_TESTS},
    "fixes_it_and_prints": {"wordcount.py": FIXED + f"print({FAKE!r})\n"},
    "fixes_it_and_leaves_a_fifo": {
        "wordcount.py": FIXED + "import os\nos.path.exists('/work/p') or os.mkfifo('/work/p')\n"
    },
}


async def _play(files: dict[str, str]) -> tuple[dict[str, float], Trajectory, Path]:
    ep = await RepoTask(repos=str(REPOS)).setup(_task("wordcount"), "w:0")
    try:
        for path, content in files.items():
            assert not (await _call(ep, "write_file", path=path, content=content)).is_error
        await _call(ep, "run_tests")  # the agent's code runs in its copy, as it would in an episode
        traj = Trajectory(id="w:0")
        return await asyncio.wait_for(ep.score(_task("wordcount"), traj), 60), traj, ep.root
    finally:
        await ep.teardown()


@pytest.mark.parametrize("game", sorted(GAMES))
def test_an_episode_that_games_the_tests_scores_no_more_than_the_unfixed_code(game):
    score, traj, _ = asyncio.run(_play(GAMES[game]))
    assert score["all_passed"] == 0.0
    assert score["tests_passed"] <= 1 / 3, traj.metadata["repo_task"]  # the unfixed code passes 1 of the 3
    assert traj.metadata["repo_task"]["run"] in (0, 1, 3)  # the pristine tests, never the episode's


@pytest.mark.parametrize("honest", sorted(HONEST))
def test_a_real_fix_scores_one_whatever_else_the_episode_did(honest):
    score, traj, _ = asyncio.run(_play(HONEST[honest]))
    assert score == {"tests_passed": 1.0, "all_passed": 1.0}, traj.metadata["repo_task"]
    assert "+    return len(text.split())" in traj.metadata["repo_task"]["diff"]


def test_the_agents_code_cannot_configure_the_hosts_git(tmp_path):
    marker = tmp_path / "ran-on-the-host"  # a command git would run outside the sandbox, as the harness's user
    hook = f'[core]\\n\\tfsmonitor = \\"touch {marker}; false\\"\\n'
    code = f"import os\nos.makedirs('/work/.git', exist_ok=True)\nopen('/work/.git/config', 'a').write(\"{hook}\")\n"
    score, traj, _ = asyncio.run(_play({"wordcount.py": BROKEN + code}))
    assert not marker.exists()
    assert score["all_passed"] == 0.0 and "+open('/work/.git/config'" in traj.metadata["repo_task"]["diff"]


@pytest.mark.slow
def test_the_example_config_runs_on_the_embedded_engine(loop, embedded, tmp_path):
    config = load_config(EXAMPLES / "repo_task.yaml")
    summary = loop.run(run(config, tmp_path / "run", engine=embedded, progress=False), timeout=600)
    trajs = [Trajectory.from_dict(r) for r in read_records(Path(summary["trajectories"]))]
    assert len(trajs) == 3 * config.samples_per_task
    for t in trajs:
        assert t.turns[0].tool_calls and t.tool_results  # the first turn was held to a call, and it ran
        scored = t.metadata["repo_task"]
        assert scored["run"] == 3 and t.reward == pytest.approx(scored["passed"] / 3)
    assert not list(Path("/tmp").glob("agentroll-repo-*/repo"))
