"""Arguments written as key/value text (glm45, qwen3_coder): decoding values, JSON text for streams."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agentroll.types import ToolSpec

from .schema import find_tool


def param_types(name: str | None, tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The schema of each top-level property of tool `name` ({} when unknown)."""
    tool = find_tool(name, tools) if name else None
    props = (tool.input_schema.get("properties") if tool else None) or {}
    return props if isinstance(props, dict) else {}


def decode_value(raw: str, schema: Any) -> Any:
    """A parameter's text -> value. With a schema, its type decides (a `string` stays text even when
    it looks like JSON); without one, JSON when the text parses, else the text itself."""
    kinds = _types(schema)
    if kinds and kinds <= {"string"}:
        return raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    if kinds and "string" in kinds and not _fits(value, kinds):
        return raw
    return value


def _types(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return set().union(*(_types(s) for s in schema[key]))
    return set()


_PY = {"object": dict, "array": list, "boolean": bool, "null": type(None), "number": (int, float), "integer": int}


def _fits(value: Any, kinds: set[str]) -> bool:
    return any(k in _PY and isinstance(value, _PY[k]) for k in kinds)


def pair_text(key: str, value: Any) -> str:
    return f"{json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)}"


def args_json(pairs: Sequence[str], *, closed: bool) -> str:
    """Argument JSON text built pair by pair; while open, a prefix of the finished text."""
    return "{" + ", ".join(pairs) + ("}" if closed else "")
