"""One conformance suite for every tool-call format; each format contributes cases_<format>.py."""

from __future__ import annotations

import importlib
import itertools
import pathlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentroll.errors import UnknownNameError
from agentroll.renderers.toolcalls import PARSERS, get_parser
from agentroll.types import ParsedMessage, ParseStatus

from .casekit import REQUIRED, Case, IdsCase

TABLES = {
    m.FORMAT: m
    for m in (
        importlib.import_module(f"{__package__}.{p.stem}")
        for p in sorted(pathlib.Path(__file__).parent.glob("cases_*.py"))
    )
}
CASES = [pytest.param(fmt, c, id=f"{fmt}-{c.id}") for fmt, m in TABLES.items() for c in m.CASES]
IDS_CASES = [
    pytest.param(fmt, c, id=f"{fmt}-{c.id}") for fmt, m in TABLES.items() if hasattr(m, "VOCAB") for c in m.IDS_CASES
]
VOCAB_CASES = [p for p in CASES if hasattr(TABLES[p.values[0]], "VOCAB")]
RECOVERED = {ParseStatus.OK, ParseStatus.UNKNOWN_TOOL, ParseStatus.SCHEMA_MISMATCH}


def check(parsed: ParsedMessage, case: Case | IdsCase, raw_of=None) -> None:
    """The parse matches the case; every call is reported with a status, a span and its raw text."""
    assert parsed.message.content == case.content
    assert parsed.message.reasoning == getattr(case, "reasoning", None)
    got = [(p.status, p.call.name if p.call else None, p.call.arguments if p.call else None) for p in parsed.tool_calls]
    assert got == [(e.status, e.name, e.arguments) for e in case.calls]
    assert parsed.message.tool_calls == tuple(p.call for p in parsed.tool_calls if p.call is not None)
    ids = [c.id for c in parsed.message.tool_calls]
    assert len(set(ids)) == len(ids)
    last_end = 0
    for p in parsed.tool_calls:
        assert (p.call is not None) == (p.status in RECOVERED)
        assert (p.error is None) == (p.status == ParseStatus.OK)
        start, end = p.span
        assert last_end <= start < end
        last_end = end
        if raw_of is not None:
            assert raw_of(start, end) == p.raw


def test_every_registered_format_has_a_case_table():
    assert sorted(TABLES) == sorted(PARSERS)


@pytest.mark.parametrize("fmt", sorted(TABLES))
def test_case_table_covers_every_required_behaviour(fmt):
    covered = set().union(*(c.tags for c in TABLES[fmt].CASES))
    assert covered >= REQUIRED, f"{fmt} lacks cases for {sorted(REQUIRED - covered)}"
    if hasattr(TABLES[fmt], "VOCAB"):
        assert any(c.id == "literal_marker_is_content" for c in TABLES[fmt].IDS_CASES)


def test_unknown_format_names_the_available_ones():
    with pytest.raises(UnknownNameError, match="hermes") as e:
        get_parser("hermes2")
    assert isinstance(e.value, KeyError)


@pytest.mark.parametrize(("fmt", "case"), CASES)
def test_parse_reports_content_and_every_call_with_its_status(fmt, case):
    parsed = get_parser(fmt).parse(case.text, case.tools)
    check(parsed, case, raw_of=lambda s, e: case.text[s:e])


def stream(fmt, case, cuts):
    """Feed case.text cut at `cuts`; check the stream against the one-shot parse."""
    parser = get_parser(fmt)
    sp = parser.stream(case.tools)
    deltas = []
    bounds = sorted({0, len(case.text), *cuts})
    for a, b in itertools.pairwise(bounds):
        deltas += sp.feed(case.text[a:b])
    deltas += sp.flush()
    final = sp.finish()
    assert final == parser.parse(case.text, case.tools)
    assert "".join(d.content or "" for d in deltas) == (final.message.content or "")
    assert "".join(d.reasoning or "" for d in deltas) == (final.message.reasoning or "")
    for i, p in enumerate(final.tool_calls):
        mine = [d for d in deltas if d.index == i]
        if p.call is None:
            continue
        assert [(d.id, d.name) for d in mine if d.name] == [(p.call.id, p.call.name)]
        assert mine[0].name is not None  # the header comes first, then argument fragments
        assert "".join(d.arguments or "" for d in mine) == (p.call.raw or "")
    assert all(d.index is None or d.index < len(final.tool_calls) for d in deltas)


@pytest.mark.parametrize(("fmt", "case"), CASES)
def test_streaming_char_by_char_equals_one_shot(fmt, case):
    stream(fmt, case, range(len(case.text)))


@pytest.mark.parametrize(("fmt", "case"), CASES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_streaming_equals_one_shot_under_any_chunking(fmt, case, data):
    n = len(case.text)
    stream(fmt, case, data.draw(st.lists(st.integers(0, n), max_size=min(n, 12)), label="cuts"))


@pytest.mark.parametrize(("fmt", "case"), VOCAB_CASES)
def test_parse_ids_agrees_with_parse_on_a_real_vocabulary(fmt, case):
    vocab = TABLES[fmt].VOCAB()
    ids = vocab.encode(case.text)
    parsed = get_parser(fmt).parse_ids(ids, vocab, case.tools)
    check(parsed, case, raw_of=lambda s, e: vocab.decode(ids[s:e]))
    assert all(0 <= p.span[0] < p.span[1] <= len(ids) for p in parsed.tool_calls)


@pytest.mark.parametrize(("fmt", "case"), IDS_CASES)
def test_marker_text_spelled_with_ordinary_tokens_is_not_a_marker(fmt, case):
    vocab = TABLES[fmt].VOCAB()
    ids = vocab.ids(case.pieces)
    parsed = get_parser(fmt).parse_ids(ids, vocab, case.tools)
    check(parsed, case, raw_of=lambda s, e: vocab.decode(ids[s:e]))


@pytest.mark.parametrize("fmt", sorted(TABLES))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_text_makes_a_parser_raise(fmt, data):
    """Any mix of the format's markers and JSON-ish debris parses to statuses, never an exception."""
    parser = get_parser(fmt)
    atoms = [*parser.markers, "{", "}", "[", "]", "(", ")", '"', ":", ",", ";", "\n", "name", "x", "=", ">", "é"]
    text = "".join(data.draw(st.lists(st.sampled_from(atoms), max_size=30), label="atoms"))
    parsed = parser.parse(text)
    for p in parsed.tool_calls:
        assert text[p.span[0] : p.span[1]] == p.raw
    stream(fmt, Case("fuzz", text, parsed.message.content), range(0, len(text), 3))
