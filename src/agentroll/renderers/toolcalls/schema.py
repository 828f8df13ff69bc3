"""Tool-call arguments against the tools offered: unknown names and full JSON Schema checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import jsonschema

from agentroll.types import ParseStatus, ToolSpec


def find_tool(name: str, tools: Sequence[ToolSpec]) -> ToolSpec | None:
    return next((t for t in tools if t.name == name), None)


def check_arguments(name: str, arguments: dict[str, Any], tools: Sequence[ToolSpec]) -> tuple[ParseStatus, str | None]:
    """OK when no tools were given; else UNKNOWN_TOOL or SCHEMA_MISMATCH (with the validator's message)."""
    if not tools:
        return ParseStatus.OK, None
    tool = find_tool(name, tools)
    if tool is None:
        return ParseStatus.UNKNOWN_TOOL, f"no tool named {name!r}; offered: {', '.join(t.name for t in tools)}"
    try:
        validator = _validator(json.dumps(tool.input_schema, sort_keys=True))
    except jsonschema.SchemaError as e:  # the tool's own schema is broken: say so, do not crash the turn
        return ParseStatus.SCHEMA_MISMATCH, f"tool {name!r} has an invalid input_schema: {e.message}"
    if validator.is_valid(arguments):  # the common case; the best error is worth finding only on failure
        return ParseStatus.OK, None
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return ParseStatus.SCHEMA_MISMATCH, f"arguments for {name!r} fail the schema at {where}: {error.message}"


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    """Built once per distinct schema (keyed by its canonical JSON)."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)
