"""strict and lenient parses: what a lenient parse salvages, how it is marked, and who sees the mark."""

from __future__ import annotations

import pytest

from agentroll.agent.rewards import format_ok, well_formed_call
from agentroll.renderers.toolcalls import get_parser
from agentroll.trajectory import Trajectory, Turn
from agentroll.types import ParseStatus as S

from .casekit import TOOLS
from .vllm_reference import SUITES
from .vllm_scenarios import NOTE, SCENARIOS

UNCLOSED = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
AS_STRING = '<tool_call>{"name": "search", "arguments": "{\\"query\\": \\"rain\\"}"}</tool_call>'


@pytest.mark.parametrize(
    ("fmt", "text", "strict_status", "salvaged", "arguments"),
    [
        ("hermes", UNCLOSED, S.TRUNCATED, "unclosed", {"city": "Paris"}),
        ("hermes", AS_STRING, S.INVALID_ARGUMENTS, "arguments_string", {"query": "rain"}),
        ("llama3_json", '{"name": "search", "parameters": "{\\"query\\": \\"a\\"}"}', S.INVALID_ARGUMENTS,
         "arguments_string", {"query": "a"}),
        # vLLM finds a Llama 3 call anywhere in the text, even inside a line of prose
        ("llama3_json", 'Here it is: {"name": "search", "parameters": {"query": "a"}} Anything else?',
         S.INVALID_JSON, "inside_prose", {"query": "a"}),
        # decoded with special tokens skipped, a v11 call loses its [ARGS]
        ("mistral", '[TOOL_CALLS]get_weather{"city": "Paris"}', S.INVALID_JSON, "args_marker_missing",
         {"city": "Paris"}),
        # vLLM's pre-v11 fallback: junk after the marker, then the JSON list
        ("mistral", '[TOOL_CALLS] calling: [{"name": "search", "arguments": {"query": "rain"}}] done',
         S.INVALID_JSON, "text_before_calls", {"query": "rain"}),
    ],
)  # fmt: skip
def test_lenient_salvages_what_strict_reports_and_marks_it(fmt, text, strict_status, salvaged, arguments):
    parser = get_parser(fmt)
    strict, lenient = parser.parse(text, TOOLS), parser.parse(text, TOOLS, mode="lenient")
    assert [p.status for p in strict.tool_calls] == [strict_status]  # recorded with its status, not dropped
    assert strict.message.tool_calls == () and strict.tool_calls[0].salvaged is None
    (call,) = lenient.tool_calls
    assert call.status == S.OK and call.salvaged == salvaged and call.call.arguments == arguments
    assert lenient.message.tool_calls == (call.call,)
    assert call.span == strict.tool_calls[0].span and call.raw == strict.tool_calls[0].raw


BARE = '<tool_call>{"name": "save_note", "arguments": "buy milk"}</tool_call>'


def test_a_bare_string_for_arguments_is_bound_to_the_one_string_parameter_of_the_tool_in_lenient_mode():
    parser = get_parser("hermes")
    (strict,) = parser.parse(BARE, (NOTE,)).tool_calls
    (lenient,) = parser.parse(BARE, (NOTE,), mode="lenient").tool_calls
    assert strict.status == S.INVALID_ARGUMENTS and strict.call is None
    assert lenient.status == S.OK and lenient.salvaged == "arguments_bare_string"
    assert lenient.call.arguments == {"text": "buy milk"}


@pytest.mark.parametrize("tools", [(), TOOLS], ids=["no_tools", "tools_with_several_parameters"])
def test_a_bare_string_stays_invalid_arguments_when_no_tool_takes_exactly_one_string(tools):
    text = BARE.replace("save_note", "search")
    (call,) = get_parser("hermes").parse(text, tools, mode="lenient").tool_calls
    assert call.status == S.INVALID_ARGUMENTS and call.call is None and call.salvaged is None


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_a_pythonic_list_with_one_unparsable_call_keeps_its_good_calls(mode):
    text = "[get_weather(city='Paris'), search(query='it's'), search(query='rain')]"  # a broken quote
    parsed = get_parser("pythonic").parse(text, TOOLS, mode=mode)
    assert [p.status for p in parsed.tool_calls] == [S.OK, S.INVALID_JSON, S.OK]
    assert [(c.name, c.arguments) for c in parsed.message.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("search", {"query": "rain"}),
    ]
    assert not any(p.salvaged for p in parsed.tool_calls)  # the good calls are well-formed
    assert parsed.tool_calls[0].span[0] == 0 and parsed.tool_calls[-1].span[1] == len(text)  # the list's ends
    assert parsed.tool_calls[1].raw == "search(query='it's')"


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_a_kimi_call_whose_id_is_not_name_colon_index_names_no_function_beside_a_valid_one(mode):
    def call(call_id, args):
        return f"<|tool_call_begin|>{call_id}<|tool_call_argument_begin|>{args}<|tool_call_end|>"

    text = f"<|tool_calls_section_begin|>{call('functions.search.0', '{}')}{call('functions.search:1', '{}')}"
    parsed = get_parser("kimi_k2").parse(text + "<|tool_calls_section_end|>", mode=mode)
    assert [p.status for p in parsed.tool_calls] == [S.MISSING_NAME, S.OK]
    assert "functions.search.0" in parsed.tool_calls[0].error
    assert [c.id for c in parsed.message.tool_calls] == ["functions.search:1"]


def test_a_turn_that_ends_inside_an_object_in_prose_is_prose():
    text = 'I would pass {"name": "search", "parameters": {"query": "'
    for mode in ("strict", "lenient"):
        parsed = get_parser("llama3_json").parse(text, TOOLS, mode=mode)
        assert parsed.tool_calls == () and parsed.message.content == text.strip()


@pytest.mark.parametrize("mode", ["strict", "lenient"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.suite}-{s.id}")
def test_the_stream_equals_the_one_shot_parse_in_each_mode_on_every_vllm_scenario(scenario, mode):
    parser = get_parser(SUITES[scenario.suite][0])
    sp, deltas = parser.stream(scenario.tools, mode=mode), []
    for ch in scenario.text:
        deltas += sp.feed(ch)
    deltas += sp.flush()
    final = sp.finish()
    assert final == parser.parse(scenario.text, scenario.tools, mode=mode)
    assert "".join(d.content or "" for d in deltas) == (final.message.content or "")
    for i, p in enumerate(final.tool_calls):
        if p.call is not None:
            mine = [d for d in deltas if d.index == i]
            assert [(d.id, d.name) for d in mine if d.name] == [(p.call.id, p.call.name)]
            assert "".join(d.arguments or "" for d in mine) == (p.call.raw or "")


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
