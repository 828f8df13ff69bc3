"""The renderer conformance suite: every property, over every case in tests/renderers/cases_*.py."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

from tests.renderers.conformance import TOOLS, RendererCase, conversations

_HERE = Path(__file__).parent


def _all_cases() -> list[RendererCase]:
    cases = []
    for info in pkgutil.iter_modules([str(_HERE)]):
        if info.name.startswith("cases_"):
            cases.extend(importlib.import_module(f"tests.renderers.{info.name}").CASES)
    return cases


CASES = _all_cases()


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def case(request) -> RendererCase:
    return request.param


@pytest.fixture(scope="module")
def renderer(case):
    return case.make()


def _sampled_turn(case, renderer, history, message) -> list[int] | None:
    """The tokens a model emits for `message` after `history`: the reference's turn, cut after its stop token."""
    prompt = case.reference(history, TOOLS, True)
    full = case.reference([*history, message], TOOLS, False)
    if full[: len(prompt)] != prompt:
        return None  # the template renders the generation prompt differently from a finished turn
    turn = full[len(prompt) :]
    stops = set(renderer.stop_token_ids())
    end = next((i for i, t in enumerate(turn) if t in stops), None)
    assert end is not None, f"{case.id}: the reference turn has no stop token"
    return turn[: end + 1]


def _turns(conversation):
    """(initial prompt messages, [(assistant message, messages after it up to the next assistant)])."""
    first = next(i for i, m in enumerate(conversation) if m.role == "assistant")
    turns, i = [], first
    while i < len(conversation):
        j = i + 1
        while j < len(conversation) and conversation[j].role != "assistant":
            j += 1
        turns.append((conversation[i], conversation[i + 1 : j]))
        i = j
    return conversation[:first], turns


def test_render_matches_reference_tokenizer_on_random_tool_conversations(case, renderer):
    for n, conv in enumerate(conversations(case.style)):
        assert renderer.render(conv, TOOLS) == case.reference(conv, TOOLS, True), f"conversation {n}"


def test_sampled_turns_parse_back_to_their_messages(case, renderer):
    checked = 0
    for conv in conversations(case.style, n=60, seed=1):
        for i, m in enumerate(conv):
            if m.role != "assistant":
                continue
            sampled = _sampled_turn(case, renderer, conv[:i], m)
            if sampled is None:
                continue
            parsed = renderer.parse(sampled, TOOLS)
            assert parsed.stopped
            assert [c.status.value for c in parsed.tool_calls] == ["ok"] * len(m.tool_calls)
            assert parsed.message.content == m.content
            got = [(c.name, c.arguments) for c in parsed.message.tool_calls]
            assert got == [(c.name, c.arguments) for c in m.tool_calls]
            if case.style.reasoning:
                assert parsed.message.reasoning == m.reasoning
            checked += 1
    assert checked >= 60, f"only {checked} assistant turns could be checked"


def test_episode_built_by_bridging_equals_reference_render(case, renderer):
    """render once, append sampled turns and bridges: the IDs equal a full reference render at every step."""
    bridged = segments_started = 0
    for n, conv in enumerate(conversations(case.style)):
        initial, turns = _turns(conv)
        history = list(initial)
        tokens = renderer.render(history, TOOLS)
        mask = [0] * len(tokens)
        for message, new in turns:
            sampled = _sampled_turn(case, renderer, history, message)
            assert sampled is not None or not case.prefix_stable, f"conversation {n}"
            if sampled is None:
                break
            tokens, mask = tokens + sampled, mask + [1] * len(sampled)
            history.append(message)
            if not new:
                break
            bridge = renderer.bridge(history, new, TOOLS)
            history.extend(new)
            expected = case.reference(history, TOOLS, True)
            if bridge.new_segment:
                assert not case.prefix_stable, f"conversation {n}: unexpected new segment: {bridge.reason}"
                assert bridge.reason
                tokens, mask = list(bridge.token_ids), [0] * len(bridge.token_ids)
                segments_started += 1
            else:
                tokens, mask = tokens + bridge.token_ids, mask + [0] * len(bridge.token_ids)
                bridged += 1
            assert tokens == expected, f"conversation {n}: episode tokens differ from the reference render"
        assert renderer.check_prefix(history, TOOLS, tokens, mask) is None, f"conversation {n}"
    assert bridged > 100, f"only {bridged} bridges ({segments_started} new segments)"
