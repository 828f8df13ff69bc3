"""`agentroll parse`, run as the real console script."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from .casekit import WEATHER

AGENTROLL = pathlib.Path(sys.executable).parent / "agentroll"
TOOLS = [WEATHER.to_openai()]


def run(fmt: str, lines: list[str], *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AGENTROLL), "parse", "--format", fmt, *flags],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_parse_writes_one_line_per_input_with_content_calls_and_statuses():
    call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    bad_unit = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "K"}}</tool_call>'
    lines = [
        json.dumps({"text": "Checking. " + call, "tools": TOOLS}),
        json.dumps({"text": bad_unit, "tools": TOOLS}),
        json.dumps({"text": "no tools, just words"}),
    ]
    done = run("hermes", lines)
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert out[0] == {
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "call_0",
                "name": "get_weather",
                "arguments": {"city": "Paris"},
                "status": "ok",
                "error": None,
                "salvaged": None,
            }
        ],
        "status": "ok",
    }
    assert out[1]["status"] == "schema_mismatch" and "unit" in out[1]["tool_calls"][0]["error"]
    assert out[2] == {"content": "no tools, just words", "tool_calls": [], "status": "ok"}


def test_bad_input_line_gets_an_error_line_and_the_run_goes_on_with_nonzero_exit():
    lines = ["{not json", json.dumps({"tools": TOOLS}), json.dumps({"text": "[f(a=1)]"})]
    done = run("pythonic", lines)
    assert done.returncode == 1
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert out[0]["line"] == 1 and "Invalid JSON" in out[0]["error"]
    assert out[1]["line"] == 2 and "text" in out[1]["error"]
    assert out[2]["tool_calls"][0]["name"] == "f" and out[2]["tool_calls"][0]["arguments"] == {"a": 1}


def test_unknown_format_is_an_error_listing_every_format():
    done = run("hermes3", ['{"text": "x"}'])
    assert done.returncode == 2
    assert "unknown tool-call parser format 'hermes3'" in done.stderr
    for name in ("hermes", "llama3_json", "pythonic", "deepseek_v3", "kimi_k2", "glm45", "qwen3_coder"):
        assert name in done.stderr


def test_mode_lenient_returns_the_repaired_call_marked_and_strict_reports_it():
    line = json.dumps({"text": '[TOOL_CALLS]get_weather{"city": "Paris"}', "tools": TOOLS})  # [ARGS] skipped
    strict, lenient = run("mistral", [line]), run("mistral", [line], "--mode", "lenient")
    assert strict.returncode == lenient.returncode == 0, strict.stderr + lenient.stderr
    (s_call,) = json.loads(strict.stdout)["tool_calls"]
    (l_call,) = json.loads(lenient.stdout)["tool_calls"]
    assert s_call["status"] == "invalid_json" and s_call["name"] is None and "[ARGS]" in s_call["error"]
    assert l_call == {
        "id": "call_0",
        "name": "get_weather",
        "arguments": {"city": "Paris"},
        "status": "ok",
        "error": None,
        "salvaged": "args_marker_missing",
    }


def test_an_unknown_mode_is_refused_naming_the_modes():
    done = run("hermes", ['{"text": "x"}'], "--mode", "loose")
    assert done.returncode == 2 and "strict" in done.stderr and "lenient" in done.stderr
