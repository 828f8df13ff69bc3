"""Schemas reach the model unmangled, and arguments that break them come back as readable errors."""

from __future__ import annotations

import asyncio
import enum
import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from agentroll.errors import ConfigError
from agentroll.tools import ToolOutput, Toolset, tool
from agentroll.types import ToolCall, ToolSpec


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


class LineItem(BaseModel):
    sku: str
    quantity: int = 1


class Node(BaseModel):
    """A tree node; children are nodes again (a recursive $ref)."""

    value: int
    children: list[Node] = []


@tool
def file_order(
    items: list[LineItem],
    priority: Priority,
    tree: Node,
    note: str | None = None,
    channel: Literal["web", "phone"] = "web",
) -> dict[str, int]:
    """File an order.

    Longer explanation that should reach the model too.

    Args:
        items: The line items, at least one.
        priority: How urgent the order is.
        tree: A category tree.
        note: Free text for the warehouse.
        channel: Where the order came from.
    """
    return {"lines": len(items), "units": sum(i.quantity for i in items)}


def _run(toolset: Toolset, name: str, arguments: dict[str, Any]):
    return asyncio.run(toolset.call(ToolCall(id="c1", name=name, arguments=arguments)))


def test_function_schema_keeps_nested_models_enums_lists_optionals_and_recursion():
    schema = file_order.spec.input_schema
    defs = schema["$defs"]
    assert schema["required"] == ["items", "priority", "tree"]
    assert schema["properties"]["items"]["items"] == {"$ref": "#/$defs/LineItem"}
    assert defs["LineItem"]["required"] == ["sku"]
    assert defs["Priority"]["enum"] == ["low", "high"]
    assert defs["Node"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}  # recursion survives
    assert {"type": "null"} in schema["properties"]["note"]["anyOf"]
    assert schema["properties"]["channel"]["enum"] == ["web", "phone"]
    assert schema["additionalProperties"] is False


def test_docstring_becomes_tool_and_parameter_descriptions():
    spec = file_order.spec
    assert spec.description == "File an order.\n\nLonger explanation that should reach the model too."
    assert spec.input_schema["properties"]["items"]["description"] == "The line items, at least one."
    assert spec.input_schema["properties"]["channel"]["description"] == "Where the order came from."


def test_return_annotation_becomes_output_schema():
    assert file_order.spec.output_schema == {"type": "object", "additionalProperties": {"type": "integer"}}


def test_schema_reaches_the_openai_shape_verbatim_and_round_trips():
    spec = file_order.spec
    assert spec.to_openai()["function"]["parameters"] == spec.input_schema
    again = ToolSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert ToolSpec.from_openai(json.loads(json.dumps(spec.to_openai()))).input_schema == spec.input_schema


def test_valid_nested_arguments_arrive_as_typed_values():
    tree = {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}
    result = _run(
        Toolset([file_order]),
        "file_order",
        {"items": [{"sku": "a", "quantity": 2}, {"sku": "b"}], "priority": "high", "tree": tree},
    )
    assert not result.is_error, result.content
    assert json.loads(result.content) == {"lines": 2, "units": 3}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"priority": "low", "tree": {"value": 1}}, "argument items: required but missing"),
        (
            {"items": [{"quantity": 2}], "priority": "low", "tree": {"value": 1}},
            "argument items[0].sku: required but missing",
        ),
        (
            {"items": [{"sku": "a", "quantity": "two"}], "priority": "low", "tree": {"value": 1}},
            "argument items[0].quantity: 'two' is not of type 'integer'",
        ),
        (
            {"items": [], "priority": "urgent", "tree": {"value": 1}},
            "argument priority: 'urgent' is not one of ['low', 'high']",
        ),
        (
            {
                "items": [],
                "priority": "low",
                "tree": {"value": 1, "children": [{"value": 2, "children": [{"value": "x"}]}]},
            },
            "argument tree.children[0].children[0].value: 'x' is not of type 'integer'",
        ),
        (
            {"items": [], "priority": "low", "tree": {"value": 1}, "colour": "red"},
            "Additional properties are not allowed ('colour' was unexpected)",
        ),
    ],
)
def test_invalid_arguments_become_an_error_result_worded_for_the_model(arguments, expected):
    result = _run(Toolset([file_order]), "file_order", arguments)
    assert result.is_error
    assert result.metadata == {"error_type": "invalid_arguments"}
    assert result.content.startswith("invalid arguments for file_order: ")
    assert expected in result.content


# A hand-written schema of the kind MCP servers send: draft-07 `definitions`, a recursive
# $ref, oneOf, arrays of objects with additionalProperties false.
NASTY = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "definitions": {
        "expr": {
            "oneOf": [
                {"type": "number"},
                {
                    "type": "object",
                    "properties": {
                        "op": {"enum": ["+", "*"]},
                        "args": {"type": "array", "items": {"$ref": "#/definitions/expr"}, "minItems": 2},
                    },
                    "required": ["op", "args"],
                    "additionalProperties": False,
                },
            ]
        }
    },
    "properties": {
        "expr": {"$ref": "#/definitions/expr"},
        "labels": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"k": {"type": "string"}},
                "required": ["k"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["expr"],
}


class ExprTool:
    """Evaluates the recursive expression it is given (a real tool with a hand-written schema)."""

    spec = ToolSpec(name="expr", description="evaluate", input_schema=NASTY)
    timeout_s = None

    async def run(self, arguments: dict[str, Any]) -> ToolOutput:
        def ev(e: Any) -> float:
            if not isinstance(e, dict):
                return e
            vals = [ev(a) for a in e["args"]]
            out = vals[0]
            for v in vals[1:]:
                out = out + v if e["op"] == "+" else out * v
            return out

        return ToolOutput(content=str(ev(arguments["expr"])), metadata={"depth_ok": True})


def test_hand_written_recursive_schema_is_kept_verbatim_and_enforced():
    toolset = Toolset([ExprTool()])
    assert toolset.specs()[0].input_schema == NASTY
    ok = _run(toolset, "expr", {"expr": {"op": "+", "args": [1, {"op": "*", "args": [2, 3]}]}, "labels": [{"k": "a"}]})
    assert (ok.content, ok.is_error, ok.metadata) == ("7", False, {"depth_ok": True})
    bad = _run(toolset, "expr", {"expr": {"op": "+", "args": [1, {"op": "-", "args": [2, 3]}]}})
    assert bad.is_error and "argument expr" in bad.content
    bad_label = _run(toolset, "expr", {"expr": 1, "labels": [{"k": "a"}, {"v": 1}]})
    assert "argument labels[1].k: required but missing" in bad_label.content


def test_a_tool_with_an_invalid_schema_is_refused_when_added_not_when_called():
    class Broken(ExprTool):
        spec = ToolSpec(name="broken", input_schema={"type": "object", "properties": {"x": {"type": "integr"}}})

    with pytest.raises(ConfigError, match="tool broken input_schema: invalid JSON Schema"):
        Toolset([Broken()])


def test_output_that_breaks_the_output_schema_is_an_error_result():
    @tool
    def scores() -> dict[str, int]:
        """Scores by name."""
        return {"alice": "high"}  # type: ignore[dict-item]

    result = _run(Toolset([scores]), "scores", {})
    assert result.is_error and result.metadata["error_type"] == "invalid_output"
    assert "output alice: 'high' is not of type 'integer'" in result.content
