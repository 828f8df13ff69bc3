"""The `render` and `doctor` console scripts, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agentroll.renderers import get_renderer
from agentroll.types import Message, ToolSpec

ROOT = Path(__file__).resolve().parents[2]
AGENTROLL = [sys.executable, "-m", "agentroll"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*AGENTROLL, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_render_prints_the_token_ids_of_the_template_text():
    out = _run("render", "--tokenizer", "smollm2", "--template", "chatml-tools",
               "--messages", "examples/messages.json", "--tools", "examples/tools.json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    messages = [Message.from_openai(m) for m in json.loads((ROOT / "examples/messages.json").read_text())]
    tools = [ToolSpec.from_openai(t) for t in json.loads((ROOT / "examples/tools.json").read_text())]
    renderer = get_renderer("smollm2")
    assert got["token_ids"] == renderer.render(messages, tools)
    assert got["text"].endswith("<tool_response>\n391\n</tool_response><|im_end|>\n<|im_start|>assistant\n")


def test_render_without_generation_prompt_ends_with_the_last_message():
    out = _run("render", "--tokenizer", "smollm2", "--template", "chatml-tools",
               "--messages", "examples/messages.json", "--no-generation-prompt")  # fmt: skip
    assert json.loads(out.stdout)["text"].endswith("</tool_response><|im_end|>\n")


def test_unknown_tokenizer_is_a_clear_error_listing_the_names():
    out = _run("render", "--tokenizer", "gpt-17", "--messages", "examples/messages.json")
    assert out.returncode == 2
    assert "unknown tokenizer 'gpt-17'" in out.stderr and "smollm2" in out.stderr


def test_malformed_message_names_the_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"role": "user", "content": "hi"}, {"role": "tool", "content": "x", "tool_calls": []}, '
                   '{"role": "user"}]')  # fmt: skip
    out = _run("render", "--tokenizer", "smollm2", "--template", "chatml-tools", "--messages", str(bad))
    assert out.returncode == 2
    assert "content: required for a user message" in out.stderr


def test_doctor_exits_zero_on_a_safe_template_and_one_on_an_unsafe_one():
    safe = _run("doctor", "--tokenizer", "smollm2", "--template", "chatml-tools", "--json")
    assert safe.returncode == 0, safe.stderr
    report = json.loads(safe.stdout)
    assert report["safe"] and report["tool_format"] == "hermes" and report["recommended"] == "chatml-tools"
    unsafe = _run("doctor", "--tokenizer", "deepseek-r1")
    assert unsafe.returncode == 1
    assert "second tool round" in unsafe.stdout and "UNSAFE" in unsafe.stdout
