"""Tool schemas reach gpt-oss as openai-harmony's TypeScript namespace, character for character."""

from __future__ import annotations

import pytest

from agentroll.renderers.harmony import HarmonyRenderer
from agentroll.types import Message, ToolSpec
from tests.renderers.cases_harmony import harmony_reference

SCHEMAS = {
    "no_properties": {"type": "object", "properties": {}},
    "bare": {},
    "described_nested_object": {
        "type": "object",
        "description": "Top.",
        "properties": {
            "inner": {
                "type": "object",
                "description": "Inner object.",
                "properties": {"flag": {"type": "boolean", "default": False}, "n": {"type": "integer", "default": 3}},
                "required": ["flag"],
            }
        },
    },
    "titles_examples_defaults": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "title": "City", "description": "Where.", "examples": ["Paris", "Oslo"]},
            "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
            "label": {"type": "string", "default": "x"},
            "opts": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "any_list": {"type": "array"},
            "mixed": {"type": ["string", "integer", "null"]},
            "maybe": {"type": "number", "nullable": True},
            "unknown": {"type": "null"},
            "untyped": {"description": "No type."},
        },
        "required": ["city"],
    },
    "one_of_property": {
        "type": "object",
        "properties": {
            "target": {
                "description": "What to hit.",
                "oneOf": [
                    {"type": "string", "description": "A name."},
                    {"type": "integer", "description": "An id.", "default": 7},
                    {"type": "object", "properties": {"x": {"type": "number"}}, "nullable": True},
                ],
                "default": "me",
            },
            "same_desc": {
                "description": "Same.",
                "oneOf": [{"type": "string", "description": "Same."}, {"type": "boolean"}],
            },
        },
    },
    "top_level_one_of": {"oneOf": [{"type": "string", "description": "s"}, {"type": "integer", "default": 1}]},
    "unicode_and_newlines": {
        "type": "object",
        "properties": {"q": {"type": "string", "description": '日本語 — "quoted"'}},
    },
}


@pytest.mark.parametrize("schema_id", sorted(SCHEMAS))
def test_tool_schema_renders_like_openai_harmony(schema_id):
    tools = [
        ToolSpec(name="probe", description="First line.\nSecond line.\r\n", input_schema=SCHEMAS[schema_id]),
        ToolSpec(name="plain", description=""),
    ]
    messages = [Message(role="system", content="Be exact."), Message(role="user", content="go")]
    assert HarmonyRenderer().render(messages, tools) == harmony_reference(messages, tools, True)
