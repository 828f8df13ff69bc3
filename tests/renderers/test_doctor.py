"""`agentroll doctor` tells safe templates from unsafe ones, on real tokenizers and Hub templates."""

from __future__ import annotations

import pytest

from agentroll.renderers.doctor import diagnose
from agentroll.renderers.templates import load_template
from agentroll.renderers.tokenizers import load_tokenizer


def test_chatml_tools_template_is_safe_with_hermes_calls():
    report = diagnose(load_tokenizer("smollm2"), load_template("chatml-tools"))
    assert report.safe, report.problems
    assert report.tool_format == "hermes" and report.tool_call_parses
    assert report.stop_tokens == ["<|im_end|>"]
    assert all(s.ok and not s.new_segment for s in report.scenarios)


def test_template_without_tool_support_is_unsafe_for_tool_rl():
    tok = load_tokenizer("smollm2")
    report = diagnose(tok, tok.chat_template)  # SmolLM2's own GGUF template: plain ChatML
    assert not report.safe
    assert report.tool_format is None


def test_qwen3_template_breaks_prefix_on_empty_thinking_and_the_bridge_says_so():
    report = diagnose(load_tokenizer("qwen3"), load_template("qwen3"))
    assert report.safe, report.problems
    assert report.thinking == "dropped after a user turn"
    by_name = {s.name: s for s in report.scenarios}
    assert by_name["reasoning then tool result"].ok and not by_name["reasoning then tool result"].new_segment
    assert by_name["reasoning then user turn"].new_segment  # history reasoning dropped: new segment, recorded
    assert by_name["tool loop"].new_segment  # an empty <think></think> is kept only on the last turn


def test_deepseek_r1_hub_template_contradicts_itself_on_a_second_tool_round():
    tok = load_tokenizer("deepseek-r1")
    report = diagnose(tok, tok.chat_template)
    assert report.tool_format == "deepseek_v3" and report.tool_call_parses
    assert not report.safe
    assert [s.name for s in report.scenarios if not s.ok] == ["second tool round"]


@pytest.mark.parametrize("tokenizer,template", [("llama3", "llama3.1"), ("qwen2.5", "qwen2.5")])
def test_hub_templates_with_json_tool_calls_are_safe(tokenizer, template):
    report = diagnose(load_tokenizer(tokenizer), load_template(template))
    assert report.safe, report.problems
    assert all(s.ok and not s.new_segment for s in report.scenarios if "reasoning" not in s.name)
