"""Tool schemas as harmony shows them to gpt-oss: a TypeScript-like `namespace functions`.

Mirrors openai-harmony's renderer character for character (its JSON-Schema ->
TypeScript walk, comments for descriptions/defaults/examples, `oneOf` unions),
because these characters become prompt tokens the model was trained on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agentroll.types import ToolSpec


def tools_section(tools: Sequence[ToolSpec]) -> str:
    """The developer message's `# Tools` section for function tools."""
    parts = ["## functions\n", "namespace functions {\n"]
    for tool in tools:
        parts.extend(f"// {line}" for line in _lines(tool.description))
        parts.append(f"type {tool.name} = (_: {to_typescript(tool.input_schema, '')}) => any;\n")
    parts.append("} // namespace functions")
    return "# Tools\n\n" + "\n".join(parts)


def _lines(text: str) -> list[str]:
    """Rust's str::lines(): split on \\n, drop one trailing \\r per line, no final empty line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _get(schema: Any, key: str) -> Any:
    return schema.get(key) if isinstance(schema, dict) else None


def _has(schema: Any, key: str) -> bool:
    """Key present, even with a null value (serde's `get` is Some(Null) then)."""
    return isinstance(schema, dict) and key in schema


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _is_enum(schema: Any) -> bool:
    values = _get(schema, "enum")
    return isinstance(values, list) and bool(values)


def _nullable(schema: Any) -> bool:
    return _get(schema, "nullable") is True


def _default(schema: Any, value: Any) -> str:
    if isinstance(value, str):
        return f'default: "{value}"' if not _is_enum(schema) else f"default: {value}"
    return f"default: {json.dumps(value, ensure_ascii=False, separators=(',', ':'))}"


def _with_null(type_str: str, schema: Any) -> str:
    return f"{type_str} | null" if _nullable(schema) and "null" not in type_str else type_str


def to_typescript(schema: Any, indent: str) -> str:
    """One JSON Schema as a TypeScript type (openai-harmony's json_schema_to_typescript)."""
    one_of = _get(schema, "oneOf")
    if isinstance(one_of, list):
        out = ""
        for variant in one_of:
            out += f"\n{indent} | " + _with_null(to_typescript(variant, indent + "   "), variant)
            comments = [d] if (d := _str(_get(variant, "description"))) is not None else []
            if _has(variant, "default"):
                comments.append(_default(variant, variant["default"]))
            if comments:
                out += " // " + " ".join(comments)
        return out
    kind = _get(schema, "type")
    if isinstance(kind, list):
        names = ["number" if k == "integer" else k for k in kind if isinstance(k, str)]
        if names:
            return " | ".join(names)
    if not isinstance(kind, str):
        return "any"
    if kind == "object":
        return _object(schema, indent)
    if kind == "string":
        enum = _get(schema, "enum")
        values = [f'"{v}"' for v in enum if isinstance(v, str)] if isinstance(enum, list) else []
        return " | ".join(values) if values else "string"
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        return f"{to_typescript(schema['items'], indent)}[]" if _has(schema, "items") else "Array<any>"
    return "any"


def _object(schema: dict, indent: str) -> str:
    out = f"{indent}// {desc}\n" if (desc := _str(schema.get("description"))) is not None else ""
    out += "{\n"
    props = schema.get("properties")
    if isinstance(props, dict):
        listed = schema.get("required")
        required = {r for r in listed if isinstance(r, str)} if isinstance(listed, list) else set()
        for key, val in props.items():
            out += _property(key, val, key in required, indent)
    return out + f"{indent}}}"


def _property(key: str, val: Any, required: bool, indent: str) -> str:
    out = ""
    mark = "" if required else "?"
    if (title := _str(_get(val, "title"))) is not None:
        out += f"{indent}// {title}\n{indent}//\n"
    one_of = _get(val, "oneOf")
    if not _has(val, "oneOf") and (desc := _str(_get(val, "description"))) is not None:
        out += f"{indent}// {desc}\n"
    examples = _get(val, "examples")
    if isinstance(examples, list) and examples:
        out += f"{indent}// Examples:\n"
        out += "".join(f'{indent}// - "{ex}"\n' for ex in examples if isinstance(ex, str))
    if isinstance(one_of, list):
        return out + _one_of_property(key, val, one_of, mark, indent)
    out += f"{indent}{key}{mark}: " + _with_null(to_typescript(val, indent + "    "), val) + ","
    if not _has(val, "oneOf") and _has(val, "default"):
        out += " // " + _default(val, val["default"])
    return out + "\n"


def _one_of_property(key: str, val: dict, variants: list, mark: str, indent: str) -> str:
    out = ""
    prop_desc = _str(val.get("description"))
    first_desc = _str(_get(variants[0], "description")) if variants else None
    desc_above = prop_desc is not None and prop_desc != first_desc
    if desc_above:
        out += f"{indent}// {prop_desc}\n"
    if "default" in val:
        out += f"{indent}// {_default(val, val['default'])}\n"
    out += f"{indent}{key}{mark}:\n"
    for i, variant in enumerate(variants):
        out += f"{indent} | " + _with_null(to_typescript(variant, indent + "   "), variant)
        comments = []
        desc = _str(_get(variant, "description"))
        if not (i == 0 and desc_above) and desc is not None and desc != prop_desc:
            comments.append(desc)
        if _has(variant, "default"):
            comments.append(_default(variant, variant["default"]))
        if comments:
            out += " // " + " ".join(comments)
        out += "\n"
    return out + f"{indent},\n"
