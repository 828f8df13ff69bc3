"""`agentroll engine check` as a user runs it: one JSON object, exit code from health and delta."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from agentroll.engines.launch import free_port


def engine_check(*args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "agentroll", "engine", "check", *args], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.slow
def test_check_against_a_vllm_server_reports_a_tiny_logprob_delta(vllm_server: Any, tokenizer: Any) -> None:
    code, report = engine_check("--engine", "vllm://" + vllm_server.url.removeprefix("http://"), "--max-tokens", "8")
    assert code == 0, report
    assert report["healthy"] and report["max_model_len"] == 2048 and report["models"]
    gen = report["generation"]
    assert len(gen["token_ids"]) == len(gen["logprobs"]) == len(report["teacher_forced_logprobs"]) > 0
    assert gen["text"] == tokenizer.decode(gen["token_ids"])
    assert 0.0 <= report["max_logprob_delta"] <= 1e-3


def test_check_of_an_unreachable_server_fails_with_a_report() -> None:
    code, report = engine_check("--engine", f"vllm://127.0.0.1:{free_port()}", "--prompt-ids", "[1, 2, 3]")
    assert code == 1
    assert report["healthy"] is False and report["ok"] is False and "error" in report
