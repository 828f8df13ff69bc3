"""A streamed chat choice (streaming.LiveChoice) fed token by token with the real smollm2 renderer:
the joined deltas equal the message the full parse returns, multi-byte characters split across tokens
included, and decoding stays linear in the answer's length. No server: the snapshots are built here."""

from __future__ import annotations

import json

import pytest

from agentroll.renderers import get_renderer
from agentroll.server.requests import ChatCall
from agentroll.server.streaming import LiveChoice
from agentroll.trajectory import Completion
from agentroll.types import Message, SamplingParams, ToolSpec

CALC = ToolSpec(
    name="calculator",
    input_schema={"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]},
)
CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2 + 2 · 3 🙂"}}\n</tool_call>'


def _call(forced: list[int], stop: tuple[str, ...] = ()) -> ChatCall:
    sampling = SamplingParams(stop=stop)
    return ChatCall([Message(role="user", content="hi")], [CALC], sampling, forced, False, 0, False, True)


def _stream(renderer, text: str, forced_text: str = "", stop: tuple[str, ...] = ()) -> tuple[list[dict], object]:
    from agentroll.renderers.toolcalls import get_parser

    forced = renderer.tokenizer.encode(forced_text) if forced_text else []
    sampled = [*renderer.tokenizer.encode(text), renderer.stop_token_ids()[0]]
    parser = get_parser(renderer.config.tool_format).stream([CALC])
    live = LiveChoice(0, _call(forced, stop), parser, renderer, renderer.tokenizer.decode)
    bodies: list[dict] = []
    for k in range(1, len(sampled)):
        bodies += live.update(Completion(sampled[:k], finish_reason=None))
    choice, last = live.finish(Completion(sampled, finish_reason="stop"))
    return bodies + last, choice


def _joined(bodies: list[dict]) -> tuple[str, dict[int, dict]]:
    content, calls = "", {}
    for b in bodies:
        d = b["delta"]
        content += d.get("content", "")
        for tc in d.get("tool_calls", []):
            got = calls.setdefault(tc["index"], {"name": "", "arguments": ""})
            got["name"] += tc.get("function", {}).get("name") or ""
            got["arguments"] += tc["function"].get("arguments") or ""
    return content, calls


@pytest.fixture(scope="module")
def smollm2():
    return get_renderer("smollm2")


def test_streamed_content_with_split_characters_equals_the_parsed_message(smollm2):
    text = "Café 北京 🙂👩‍👩‍👧 — done."
    assert len(smollm2.tokenizer.encode("🙂")) > 1  # the emoji's bytes really are split across tokens
    bodies, choice = _stream(smollm2, text)
    content, calls = _joined(bodies)
    assert content == choice.returned.content == text and not calls
    assert bodies[-1]["finish_reason"] == "stop"


def test_a_streamed_tool_call_joins_to_the_returned_call(smollm2):
    bodies, choice = _stream(smollm2, "Let me compute. " + CALL)
    content, calls = _joined(bodies)
    (returned,) = choice.returned.tool_calls
    assert content.strip() == (choice.returned.content or "").strip()
    assert calls[0]["name"] == returned.name == "calculator"
    assert json.loads(calls[0]["arguments"]) == returned.arguments == {"expression": "2 + 2 · 3 🙂"}


def test_a_forced_opener_streams_with_the_first_sampled_token(smollm2):
    opener = '<tool_call>\n{"name": "calculator", "arguments": '
    bodies, choice = _stream(smollm2, CALL[len(opener) :], forced_text=opener)
    _, calls = _joined(bodies)
    assert calls[0]["name"] == "calculator"
    assert json.loads(calls[0]["arguments"]) == choice.returned.tool_calls[0].arguments


def test_streamed_content_ends_before_a_stop_string_as_the_returned_message_does(smollm2):
    # An engine that stopped on "Observation:" still returns the tokens that spell it (and what shares
    # their last token); the client reads the text before it.
    bodies, choice = _stream(smollm2, "Thought: add them. Observation: 5", stop=("Observation:",))
    content, _ = _joined(bodies)
    assert content == choice.returned.content
    assert "Observation" not in content and content.startswith("Thought: add them.")
    assert "Observation:" in choice.parsed.message.content  # what the model sampled, as a session records it


def test_streaming_decodes_each_token_a_bounded_number_of_times(smollm2):
    decoded: list[int] = []
    tok = smollm2.tokenizer

    class Counting:
        def __getattr__(self, name):
            return getattr(tok, name)

        def decode(self, ids):
            decoded.append(len(ids))
            return tok.decode(ids)

    class Renderer:
        tokenizer = Counting()
        config = smollm2.config

        def __getattr__(self, name):
            return getattr(smollm2, name)

    text = "one two three four five six seven eight nine ten\n" * 60
    bodies, choice = _stream(Renderer(), text)
    n = len(tok.encode(text))
    assert _joined(bodies)[0] == choice.returned.content == text.strip()
    assert sum(decoded) <= 4 * n  # a short window per token; decoding the whole prefix each time is ~n²/2
