"""The training example itself, two steps: the GRPO loop turns from the command line (it proves the loop, not
learning; docs/trainers.md has the 40-step figures)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HAVE_VLLM

SCRIPT = Path(__file__).parents[2] / "examples" / "train_gsm8k_calculator.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_VLLM, reason="the embedded engine needs vllm"),
    pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason="trl not installed: pip install .[trl]"),
]


@pytest.mark.timeout(900)
def test_two_steps_of_the_example_write_the_report_curve_and_step_directories(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, str(SCRIPT), "--steps", "2", "--prompts", "1", "--group", "2", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=840)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == 2 and report["episodes"] == 4
    assert report["trainer_ratio_share_within_1e-3_min"] >= 0.999  # fp32: TRL's forward == the rollout
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [0, 1]
    assert steps[0]["weight_update"] is None and steps[1]["weight_update"]["version"] == 1
    for s in steps:  # every step's episodes are a run directory on disk, one record per episode
        records = Path(s["run_dir"]).read_text().splitlines()
        assert len(records) == 2
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "log_history.json").read_text())
    assert any("agentroll/trainer_ratio_min" in h for h in history)  # the rollout's metrics reached TRL's logs
    assert '"last"' in done.stdout  # the report is printed
    # the example keeps what verify needs: step 1's tokens are checked against the weights that sampled them
    step1 = Path(steps[1]["run_dir"]).parent
    verify = [sys.executable, "-m", "agentroll", "verify", str(step1), "--reference", "hf"]
    checked = subprocess.run(verify, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
    assert json.loads(checked.stdout)["versions_checked"] == [1]
