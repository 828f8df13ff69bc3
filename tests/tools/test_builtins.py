"""calculator and retrieve: right answers, refusals worded for the model, IDs for the reward."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from agentroll.errors import ConfigError, UnknownNameError
from agentroll.tools import Toolset, make_builtin
from agentroll.tools.builtins.calculator import evaluate
from agentroll.tools.builtins.retrieve import BM25Index, Passage
from agentroll.types import ToolCall


def run(name: str, **arguments):
    toolset = Toolset([make_builtin(name)])
    return asyncio.run(toolset.call(ToolCall(id="c", name=name, arguments=arguments)))


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("(3 + 4) * 12 / 7", 12.0),
        ("2**10 - 24 // 5 % 3", 1023),
        ("-(-2) ** 2", -4),
        ("sqrt(16) + abs(-2.5) + max(1, 7, 3)", 13.5),
        ("round(pi, 4)", 3.1416),
        ("factorial(20)", math.factorial(20)),
        ("10**100 + 1", 10**100 + 1),  # exact integers, no float rounding
    ],
)
def test_calculator_evaluates_arithmetic_exactly(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('id')", "not allowed in an arithmetic expression: call of Attribute"),
        ("(1).__class__", "not allowed in an arithmetic expression: Attribute"),
        ("open('/etc/passwd')", "not allowed in an arithmetic expression: call of name 'open'"),
        ("[x for x in range(9)]", "not allowed in an arithmetic expression: ListComp"),
        ("'a' * 3", "not allowed in an arithmetic expression: constant 'a'"),
        ("9**9**9", "exponent 387420489 is too large"),
        ("(10**4000) ** 2", "result has more than 4300 digits"),
        ("1/0", "division by zero"),
        ("2 +", "not an arithmetic expression"),
    ],
)
def test_calculator_refuses_anything_but_arithmetic_with_a_reason(expression, message):
    result = run("calculator", expression=expression)
    assert result.is_error and result.metadata["error_type"] == "invalid_arguments"
    assert message in result.content


def test_calculator_result_carries_the_value_as_metadata():
    result = run("calculator", expression="7 * 6")
    assert (result.content, result.metadata, result.is_error) == ("42", {"value": 42}, False)


def test_retrieve_returns_passages_and_their_ranked_document_ids():
    result = run("retrieve", query="Which river has the White Nile and Blue Nile tributaries?", k=2)
    assert not result.is_error
    assert result.metadata["doc_ids"][0] == "geo-002"
    assert len(result.metadata["doc_ids"]) == len(result.metadata["scores"]) <= 2
    assert result.metadata["scores"] == sorted(result.metadata["scores"], reverse=True)
    assert result.content.startswith("[geo-002] The Nile: The Nile flows north")


def test_retrieve_with_no_match_says_so_and_returns_no_ids():
    result = run("retrieve", query="zxqv qwerty")
    assert (result.content, result.metadata["doc_ids"], result.is_error) == ("No passage matches the query.", [], False)


def test_bm25_prefers_rare_terms_and_shorter_documents():
    index = BM25Index(
        [
            Passage("long", "apple " + "filler " * 50),
            Passage("kiwi", "kiwi filler"),
            Passage("short", "apple apple"),
            Passage("pie", "apple pie"),
        ]
    )
    assert index.search("kiwi apple", 1)[0][0].id == "kiwi"  # kiwi is in one passage, apple in three
    assert [p.id for p, _ in index.search("apple", 5)] == ["short", "pie", "long"]


def test_retrieve_loads_a_corpus_from_a_file(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "\n".join(json.dumps({"id": f"d{i}", "text": t}) for i, t in enumerate(["red fox", "blue whale"]))
    )
    toolset = Toolset([make_builtin("retrieve", corpus=str(corpus), k=1)])
    result = asyncio.run(toolset.call(ToolCall(id="c", name="retrieve", arguments={"query": "whale"})))
    assert (result.content, result.metadata["doc_ids"]) == ("[d1] blue whale", ["d1"])


def test_builtin_names_and_options_are_checked():
    with pytest.raises(UnknownNameError, match="available: calculator, python, retrieve"):
        make_builtin("calculater")
    with pytest.raises(ConfigError, match="built-in tool python: bad options"):
        make_builtin("python", memory="lots")
