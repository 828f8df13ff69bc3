"""A real run directory for the viewer: the GSM8K calculator demo, shrunk, on the shared embedded engine.

4 GSM8K questions x 2 samples (greedy), tool_choice names `calculator` so every turn is a real (forced) call whose
result the real tool computes, max_turns 2. Starting the engine costs 40-70 s, so users are slow tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from agentroll.rollout.config import config_from_dict
from agentroll.rollout.runner import run

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="session")
def run_dir(loop: Any, embedded: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = yaml.safe_load((EXAMPLES / "gsm8k_calculator.yaml").read_text(encoding="utf-8"))
    raw["base_dir"] = str(EXAMPLES)
    raw["dataset"] |= {"offset": 4, "limit": 4}  # questions where greedy SmolLM2 writes valid calls (and one truncates)
    raw["samples_per_task"] = 2
    raw["episode"] = {
        "max_turns": 2,
        "tool_choice": "calculator",
        "sampling": {"max_tokens": 48, "temperature": 0.0, "seed": 0, "logprobs": 0},
    }
    raw["rewards"] = {"exact_match": 1.0, "used_tools": 0.5}
    out = tmp_path_factory.mktemp("view") / "run"
    loop.run(run(config_from_dict(raw), out, engine=embedded, progress=False))
    return out
