"""Mistral specifics: where tools and system prompts live, cut-off turns, the tokenizer adapter."""

from __future__ import annotations

import pytest

from agentroll.errors import RenderError
from agentroll.renderers.mistral import MistralRenderer
from agentroll.types import Message, ToolCall
from tests.renderers.cases_mistral import mistral_reference
from tests.renderers.conformance import TOOLS

USER = Message(role="user", content="What is 6*7?")
CALL = ToolCall(id="a1B2c3D4e", name="calculator", arguments={"expression": "6*7"})
TURN = Message(role="assistant", tool_calls=(CALL,))
RESULT = Message(role="tool", content='{"value": 42}', tool_call_id="a1B2c3D4e", name="calculator")
ANSWER = Message(role="assistant", content="It is 42.")
MORE = Message(role="user", content="And 7*8?")


@pytest.fixture(scope="module", params=["v3", "v3-tekken", "v7"])
def version(request):
    return request.param


def test_a_cut_off_turn_gets_its_eos_from_the_bridge(version):
    renderer, reference = MistralRenderer(version), mistral_reference(version)
    prompt = reference([USER], TOOLS, True)
    ids = reference([USER, TURN], TOOLS, False)[len(prompt) : -1]  # stopped at max_tokens before </s>
    assert renderer.parse(ids, TOOLS).stopped is False
    bridge = renderer.bridge([USER, TURN], [RESULT], TOOLS, stopped=False)
    assert bridge.token_ids[0] == renderer.eos and not bridge.new_segment
    assert prompt + ids + bridge.token_ids == reference([USER, TURN, RESULT], TOOLS, True)


def test_a_new_user_message_moves_available_tools_so_the_bridge_starts_a_new_segment(version):
    renderer = MistralRenderer(version)
    history = [USER, TURN, RESULT, ANSWER]
    bridge = renderer.bridge(history, [MORE], TOOLS)
    assert bridge.new_segment and "[AVAILABLE_TOOLS]" in bridge.reason
    assert bridge.token_ids == mistral_reference(version)([*history, MORE], TOOLS, True)


def test_without_tools_a_new_user_message_bridges_exactly_except_a_v3_system_prompt(version):
    renderer, reference = MistralRenderer(version), mistral_reference(version)
    system = Message(role="system", content="Be brief.")
    for history in ([USER, ANSWER], [system, USER, ANSWER]):
        bridge = renderer.bridge(history, [MORE], [])
        moves = version != "v7" and history[0].role == "system"
        assert bridge.new_segment == moves, history
        expected = reference([*history, MORE], [], True)
        if moves:
            assert "system prompt" in bridge.reason and bridge.token_ids == expected
        else:
            assert reference(history, [], False) + bridge.token_ids == expected


def test_v3_refuses_content_and_calls_in_one_message_like_mistral_common():
    both = Message(role="assistant", content="Let me compute.", tool_calls=(CALL,))
    with pytest.raises(RenderError, match="content and tool calls"):
        MistralRenderer("v3").render([USER, both, RESULT], TOOLS)
    v7 = MistralRenderer("v7")
    assert v7.render([USER, both, RESULT], TOOLS) == mistral_reference("v7")([USER, both, RESULT], TOOLS, True)


def test_check_prefix_catches_a_bridge_that_left_the_tools_where_they_were(version):
    renderer, reference = MistralRenderer(version), mistral_reference(version)
    prompt = reference([USER], TOOLS, True)
    ids = reference([USER, ANSWER], TOOLS, False)[len(prompt) :]
    naive = (
        renderer.tokenizer.encode("[INST]")
        + renderer.tokenizer.text(MORE.content)
        + renderer.tokenizer.encode("[/INST]")
    )
    tokens, mask = prompt + ids + naive, [0] * len(prompt) + [1] * len(ids) + [0] * len(naive)
    assert renderer.check_prefix([USER, ANSWER, MORE], TOOLS, tokens, mask) is not None
    fresh = renderer.render([USER, ANSWER, MORE], TOOLS)
    assert renderer.check_prefix([USER, ANSWER, MORE], TOOLS, fresh, [0] * len(fresh)) is None


def test_tokenizer_adapter_maps_control_token_text_to_their_ids_and_back(version):
    tok = MistralRenderer(version).tokenizer
    ids = tok.encode("[INST]hi there[/INST]")
    assert ids[0] == tok.special_ids["[INST]"] and ids[-1] == tok.special_ids["[/INST]"]
    assert tok.decode(ids) == "[INST]hi there[/INST]"
    assert tok.special_ids["[TOOL_CALLS]"] not in tok.text("[TOOL_CALLS]")  # text() never makes control tokens
