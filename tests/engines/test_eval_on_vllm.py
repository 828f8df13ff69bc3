"""`agentroll eval --compare` as a user runs it: two real vLLM servers, the guided GSM8K + calculator config."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "gsm8k_calculator_guided.yaml"


def _eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agentroll", "eval", str(CONFIG), "--no-progress", *args],
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_eval_compares_two_engines_on_the_same_tasks_and_reports_tool_use(vllm_servers: list[Any], tmp_path: Path):
    a, b = ("vllm://" + s.url.removeprefix("http://") for s in vllm_servers)
    out = tmp_path / "eval"
    done = _eval("--limit", "3", "--samples", "2", "--compare", a, b, "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "eval.json").read_text())
    assert result["metric"] == "exact_match" and list(result["comparison"])[:2] == ["base", "other"]
    for label, report in result["candidates"].items():
        runs = [json.loads(line) for line in (out / label / "trajectories.jsonl").read_text().splitlines()]
        assert len(runs) == report["episodes"] == 6 and report["tasks"] == 3
        by_task = defaultdict(list)
        for t in runs:  # pass@1 recomputed from the trajectories on disk
            by_task[t["task_id"]].append(t["rewards"]["exact_match"] >= 1.0)
        assert report["pass@1"]["mean"] == pytest.approx(
            statistics.fmean(statistics.fmean(v) for v in by_task.values())
        )
        assert "pass@2" in report and "pass@4" not in report  # 2 samples per task
        # the config guides the first turn into a calculator call: every episode made one
        assert report["tool_calls_per_episode"] >= 1 and report["episodes_with_a_call_that_ran"] > 0
    ids = [sorted(json.loads(line)["id"] for line in (out / label / "trajectories.jsonl").read_text().splitlines())
           for label in result["candidates"]]  # fmt: skip
    assert ids[0] == ids[1]  # the same episodes, hence the same seeds (rollout.executor.seeded: from the episode ID)
    assert result["comparison"]["tasks"] == 3
    assert "on 3 tasks: success rate" in done.stdout and "pass@1" in done.stdout
    ET.fromstring((out / "eval.svg").read_text())  # a well-formed SVG

    label_b = list(result["candidates"])[1]
    lines_before = (out / label_b / "trajectories.jsonl").read_text()
    again = _eval("--limit", "2", "--samples", "2", "--engine", b, "--out", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / label_b / "trajectories.jsonl").read_text() == lines_before  # on disk already: nothing replayed
    (report,) = json.loads((out / "eval.json").read_text())["candidates"].values()
    assert report["tasks"] == 2 and report["episodes"] == 4  # the eval asked for, not all that is on disk
