"""gpt-oss specifics: the history policy the bridge must own up to, cut-off turns, knobs, stop tokens."""

from __future__ import annotations

import pytest

from agentroll.renderers.harmony import HarmonyRenderer
from agentroll.types import Message, ToolCall
from tests.renderers.cases_harmony import harmony_encoding, harmony_reference
from tests.renderers.conformance import TOOLS

USER = Message(role="user", content="What is 6*7?")
CALL = ToolCall(id="call_a", name="calculator", arguments={"expression": "6*7"})
RESULT = Message(role="tool", content="42", tool_call_id="call_a", name="calculator")
REASONED_FINAL = Message(role="assistant", reasoning="Easy.", content="42.")


@pytest.fixture(scope="module")
def renderer():
    return HarmonyRenderer()


def sampled(history, message):
    """What the model emits for `message` after `history`, per openai-harmony."""
    prompt = harmony_reference(history, TOOLS, True)
    return harmony_reference([*history, message], TOOLS, False)[len(prompt) :]


def test_bridge_after_a_final_answer_starts_a_new_segment_saying_why(renderer):
    history = [USER, REASONED_FINAL]
    assert sampled([USER], REASONED_FINAL)[-1] == renderer.tokenizer.token("<|return|>")
    bridge = renderer.bridge(history, [Message(role="user", content="And 7*8?")], TOOLS)
    assert bridge.new_segment and "<|return|>" in bridge.reason
    assert bridge.token_ids == harmony_reference([*history, Message(role="user", content="And 7*8?")], TOOLS, True)


def test_analysis_dropped_in_the_prompt_but_shown_again_after_a_call_starts_a_new_segment(renderer):
    history = [USER, REASONED_FINAL, Message(role="user", content="Check it."),
               Message(role="assistant", reasoning="Use the tool.", tool_calls=(CALL,))]  # fmt: skip
    prompt = harmony_reference(history[:-1], TOOLS, True)
    assert renderer.tokenizer.decode(prompt).count("Easy.") == 0  # dropped while the last answer was final
    bridge = renderer.bridge(history, [RESULT], TOOLS)
    assert bridge.new_segment and "analysis" in bridge.reason
    assert renderer.tokenizer.decode(bridge.token_ids).count("Easy.") == 1  # and back once a call is last


def test_bridge_after_a_tool_call_is_exactly_the_reference_continuation(renderer):
    turn = Message(role="assistant", reasoning="Use the tool.", tool_calls=(CALL,))
    prompt, ids = harmony_reference([USER], TOOLS, True), sampled([USER], turn)
    bridge = renderer.bridge([USER, turn], [RESULT], TOOLS)
    assert not bridge.new_segment
    assert prompt + ids + bridge.token_ids == harmony_reference([USER, turn, RESULT], TOOLS, True)


def test_a_cut_off_tool_call_is_closed_by_the_bridge(renderer):
    turn = Message(role="assistant", tool_calls=(CALL,))
    ids = sampled([USER], turn)[:-1]  # the engine stopped at max_tokens right before <|call|>
    assert renderer.parse(ids, TOOLS).stopped is False
    bridge = renderer.bridge([USER, turn], [RESULT], TOOLS, stopped=False)
    assert bridge.token_ids[0] == renderer.tokenizer.token("<|call|>")
    prompt = harmony_reference([USER], TOOLS, True)
    assert prompt + ids + bridge.token_ids == harmony_reference([USER, turn, RESULT], TOOLS, True)


def test_check_prefix_catches_an_episode_that_kept_a_sampled_return_token(renderer):
    new = Message(role="user", content="Thanks.")
    prompt, ids = harmony_reference([USER], TOOLS, True), sampled([USER], REASONED_FINAL)
    naive = renderer.tokenizer.encode("<|start|>user<|message|>Thanks.<|end|><|start|>assistant")  # no policy
    tokens = prompt + ids + naive
    mask = [0] * len(prompt) + [1] * len(ids) + [0] * len(naive)
    drift = renderer.check_prefix([USER, REASONED_FINAL, new], TOOLS, tokens, mask)
    assert drift is not None and drift.token_index >= len(prompt)
    assert renderer.check_prefix([USER, REASONED_FINAL], TOOLS, prompt + ids, mask[: len(prompt) + len(ids)]) is None


def test_reasoning_effort_identity_and_date_reach_the_system_message():
    from openai_harmony import Conversation, ReasoningEffort, Role, SystemContent
    from openai_harmony import Message as HMessage

    renderer = HarmonyRenderer(reasoning_effort="high", model_identity="You are a tester.", current_date="2026-01-01")
    system = (SystemContent.new().with_reasoning_effort(ReasoningEffort.HIGH)
              .with_model_identity("You are a tester.").with_conversation_start_date("2026-01-01"))  # fmt: skip
    convo = Conversation.from_messages(
        [HMessage.from_role_and_content(Role.SYSTEM, system), HMessage.from_role_and_content(Role.USER, USER.content)]
    )
    assert renderer.render([USER]) == harmony_encoding().render_conversation_for_completion(convo, Role.ASSISTANT)


def test_stop_tokens_end_a_turn_not_a_message(renderer):
    tok = renderer.tokenizer.token
    assert sorted(renderer.stop_token_ids()) == sorted([tok("<|return|>"), tok("<|call|>")])
    assert tok("<|end|>") not in renderer.stop_token_ids()


def test_parse_reads_the_recipient_after_the_channel_as_gpt_oss_samples_it(renderer):
    text = '<|channel|>commentary to=functions.calculator <|constrain|>json<|message|>{"expression": "1+1"}<|call|>'
    parsed = renderer.parse(renderer.tokenizer.encode(text), TOOLS)
    assert parsed.stopped and parsed.status.value == "ok"
    assert [(c.name, c.arguments) for c in parsed.message.tool_calls] == [("calculator", {"expression": "1+1"})]


def test_unknown_reasoning_effort_is_a_render_error():
    from agentroll.errors import RenderError

    with pytest.raises(RenderError, match="reasoning_effort"):
        HarmonyRenderer(reasoning_effort="max")
