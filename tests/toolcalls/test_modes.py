"""strict and lenient parses: what a lenient parse salvages, how it is marked, and who sees the mark."""

from __future__ import annotations

import pytest

from agentroll.agent.rewards import format_ok, well_formed_call
from agentroll.renderers.toolcalls import get_parser
from agentroll.trajectory import Trajectory, Turn
from agentroll.types import ParseStatus as S

from .casekit import TOOLS

UNCLOSED = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
AS_STRING = '<tool_call>{"name": "search", "arguments": "{\\"query\\": \\"rain\\"}"}</tool_call>'


@pytest.mark.parametrize(
    ("fmt", "text", "strict_status", "salvaged", "arguments"),
    [
        ("hermes", UNCLOSED, S.TRUNCATED, "unclosed", {"city": "Paris"}),
        ("hermes", AS_STRING, S.INVALID_ARGUMENTS, "arguments_string", {"query": "rain"}),
        ("llama3_json", '{"name": "search", "parameters": "{\\"query\\": \\"a\\"}"}', S.INVALID_ARGUMENTS,
         "arguments_string", {"query": "a"}),
    ],
)  # fmt: skip
def test_lenient_salvages_what_strict_reports_and_marks_it(fmt, text, strict_status, salvaged, arguments):
    parser = get_parser(fmt)
    strict, lenient = parser.parse(text, TOOLS), parser.parse(text, TOOLS, mode="lenient")
    assert [p.status for p in strict.tool_calls] == [strict_status]
    assert strict.message.tool_calls == () and strict.tool_calls[0].salvaged is None
    (call,) = lenient.tool_calls
    assert call.status == S.OK and call.salvaged == salvaged and call.call.arguments == arguments
    assert lenient.message.tool_calls == (call.call,)


def test_an_unclosed_call_whose_json_is_not_whole_is_truncated_in_both_modes():
    text = UNCLOSED.rstrip()[:-2]
    for mode in ("strict", "lenient"):
        assert [p.status for p in get_parser("hermes").parse(text, mode=mode).tool_calls] == [S.TRUNCATED]


def test_a_salvaged_call_earns_no_format_reward():
    (call,) = get_parser("hermes").parse(UNCLOSED, TOOLS, mode="lenient").tool_calls

    def episode(c):
        turn = Turn(index=0, segment=0, prompt_len=1, sampled_ids=[1], logprobs=None, top_logprobs=None,
                    finish_reason="stop", tool_calls=[c])  # fmt: skip
        return Trajectory(id="t:0", turns=[turn], stop_reason="done")

    assert well_formed_call(episode(call), None) == 0.0 and format_ok(episode(call), None) == 0.0
    clean = call.model_copy(update={"salvaged": None})
    assert well_formed_call(episode(clean), None) == 1.0 and format_ok(episode(clean), None) == 1.0


def test_the_stream_finishes_with_the_mode_it_was_given():
    sp = get_parser("hermes").stream(TOOLS, mode="lenient")
    sp.feed(UNCLOSED)
    sp.flush()
    assert sp.finish().tool_calls[0].salvaged == "unclosed"
