"""The structural tag a guided tool call is decoded under: the template's own call text, the tool's schema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from agentroll.errors import RenderError
from agentroll.renderers import get_renderer
from agentroll.types import ToolSpec

UNIT = {"$defs": {"unit": {"enum": ["c", "f"]}}, "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"$ref": "#/$defs/unit"}}, "required": ["city"]}  # fmt: skip
WEATHER = ToolSpec(name="get_weather", description="w", input_schema=UNIT)
SEARCH = ToolSpec(
    name="search", description="s", input_schema={"type": "object", "properties": {"q": {"type": "string"}}}
)


def flatten(fmt: dict) -> str:
    """The text a format matches when its JSON part is a given example (for the checks below)."""
    parts = fmt["elements"] if fmt["type"] == "sequence" else [fmt]
    return "".join(p["value"] if p["type"] == "const_string" else "<JSON>" for p in parts)


@pytest.fixture(scope="module")
def renderer():
    return get_renderer("smollm2")


def test_required_opens_the_call_and_offers_every_tool_under_its_own_schema(renderer):
    g = renderer.guided_call([WEATHER, SEARCH])
    assert renderer.tokenizer.decode(g.prefix) == renderer.tokenizer.decode(
        renderer.forced_call_prefix([WEATHER, SEARCH])
    )
    body = g.structural_tag["format"]
    assert g.structural_tag["type"] == "structural_tag" and body["type"] == "or"
    texts = [flatten(e) for e in body["elements"]]
    assert texts == ['get_weather", "arguments": <JSON>}\n</tool_call>', 'search", "arguments": <JSON>}\n</tool_call>']
    schemas = [p["json_schema"] for e in body["elements"] for p in e["elements"] if p["type"] == "json_schema"]
    assert schemas == [UNIT, SEARCH.input_schema]  # whole documents: $defs and their references intact
    jsonschema.validate({"city": "Lyon", "unit": "c"}, schemas[0])


def test_named_forces_up_to_the_arguments_and_guides_the_rest(renderer):
    g = renderer.guided_call([WEATHER, SEARCH], "search")
    prefix = renderer.tokenizer.decode(g.prefix)
    assert prefix == renderer.tokenizer.decode(renderer.forced_call_prefix([WEATHER, SEARCH], "search"))
    assert prefix.endswith('"name": "search", "arguments":')
    assert flatten(g.structural_tag["format"]) == " <JSON>}\n</tool_call>"  # the space the prefix left off
    # what a model writes under the tag, after the prefix, is the template's own rendering of the call
    written = prefix + " " + json.dumps({"q": "rain"}) + "}\n</tool_call>"
    parsed = renderer.parse(renderer.tokenizer.encode(written), [WEATHER, SEARCH])
    assert [(c.status, c.call.name, c.call.arguments) for c in parsed.tool_calls] == [("ok", "search", {"q": "rain"})]


def test_xgrammar_takes_indented_arguments_but_ends_a_run_of_blank_lines(renderer):
    """vLLM compiles the tag with xgrammar; a 135M model at temperature 1 once wrote newlines until max_tokens."""
    from xgrammar import Grammar
    from xgrammar.testing import _is_grammar_accept_string as accepts

    grammar = Grammar.from_structural_tag(json.dumps(renderer.guided_call([WEATHER, SEARCH], "search").structural_tag))
    end = "}\n</tool_call>"
    assert accepts(grammar, ' {"q": "rain"}' + end)
    assert accepts(grammar, ' {\n    "q": "rain"\n}' + end)
    assert not accepts(grammar, ' {"q": "rain"' + "\n" * 40 + "}" + end)


def test_a_tool_that_is_not_offered_cannot_be_guided(renderer):
    with pytest.raises(RenderError, match="no tool named 'nope'"):
        renderer.guided_call([WEATHER], "nope")
