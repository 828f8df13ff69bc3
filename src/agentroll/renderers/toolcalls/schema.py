"""Tool-call arguments against the tools offered: unknown names and full JSON Schema checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import jsonschema

from agentroll import schema_check
from agentroll.schema_check import Validator
from agentroll.types import ParseStatus, ToolSpec


def find_tool(name: str, tools: Sequence[ToolSpec]) -> ToolSpec | None:
    return next((t for t in tools if t.name == name), None)


def only_string_parameter(name: str, tools: Sequence[ToolSpec]) -> str | None:
    """The one parameter of tool `name` when it takes exactly one and that one may be a string; else None.
    A bare string given for such a tool's arguments can only mean that parameter."""
    tool = find_tool(name, tools)
    props = tool.input_schema.get("properties") if tool is not None else None
    if not isinstance(props, dict) or len(props) != 1:
        return None
    ((param, schema),) = props.items()
    kind = schema.get("type", "string") if isinstance(schema, dict) else None
    return param if kind == "string" or (isinstance(kind, list) and "string" in kind) else None


def check_arguments(name: str, arguments: dict[str, Any], tools: Sequence[ToolSpec]) -> tuple[ParseStatus, str | None]:
    """OK when no tools were given; else UNKNOWN_TOOL or SCHEMA_MISMATCH (with the validator's message)."""
    if not tools:
        return ParseStatus.OK, None
    tool = find_tool(name, tools)
    if tool is None:
        return ParseStatus.UNKNOWN_TOOL, f"no tool named {name!r}; offered: {', '.join(t.name for t in tools)}"
    try:
        validator = _validator_of(tool)
    except jsonschema.SchemaError as e:  # the tool's own schema is broken: say so, do not crash the turn
        return ParseStatus.SCHEMA_MISMATCH, f"tool {name!r} has an invalid input_schema: {e.message}"
    if validator.is_valid(arguments):  # the common case; the best error is worth finding only on failure
        return ParseStatus.OK, None
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return ParseStatus.SCHEMA_MISMATCH, f"arguments for {name!r} fail the schema at {where}: {error.message}"


_BY_TOOL: dict[int, tuple[ToolSpec, Validator]] = {}


def _validator_of(tool: ToolSpec) -> Validator:
    """The tool's validator, found by the spec's identity (specs are frozen; an episode reuses the same
    objects every turn), so a turn does not serialise the schema again to look it up."""
    hit = _BY_TOOL.get(id(tool))
    if hit is not None and hit[0] is tool:
        return hit[1]
    validator = _validator(json.dumps(tool.input_schema, sort_keys=True))
    if len(_BY_TOOL) >= 256:
        _BY_TOOL.clear()
    _BY_TOOL[id(tool)] = (tool, validator)  # holding the spec keeps its id from being reused
    return validator


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Validator:
    """Built once per distinct schema (keyed by its canonical JSON)."""
    return schema_check.build(json.loads(schema_json))
