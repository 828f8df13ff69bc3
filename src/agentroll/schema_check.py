"""JSON Schema validators with a fast path for the schema tools declare most: a flat object of typed fields.

`jsonschema` walks a schema keyword by keyword for every instance (~30 µs for a one-field object),
and the loop checks each call's arguments twice (when it parses the call, and when the tool runs).
A schema made only of `type: object`, `properties` whose schemas are a bare `type`, `required`,
`additionalProperties: true|false` and annotations (title, description, ...) compiles to a few
isinstance checks with jsonschema's own type rules. Everything else, and the wording of every
error, stays with jsonschema. Tests compare the two on random instances.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema

_ANNOTATIONS = {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly"}
_ROOT_KEYS = {"type", "properties", "required", "additionalProperties", "$schema"} | _ANNOTATIONS
# Drafts where 1.0 is an integer; draft 4 says it is not, and goes to jsonschema.
_DRAFTS = (
    jsonschema.Draft6Validator, jsonschema.Draft7Validator, jsonschema.Draft201909Validator,
    jsonschema.Draft202012Validator,
)  # fmt: skip


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


def _is_integer(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


# jsonschema's default type checker, type by type.
_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "number": _is_number,
    "integer": _is_integer,
}


def build(schema: Any) -> Validator:
    """The validator for `schema` under its declared draft (2020-12 when it declares none).

    Raises jsonschema.SchemaError when the schema itself is invalid."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return Validator(cls(schema))


class Validator:
    """jsonschema's validator for a schema; `is_valid` is a compiled check where the schema allows."""

    def __init__(self, validator: jsonschema.protocols.Validator):
        self.jsonschema = validator
        self._fast = compile_flat(validator.schema) if isinstance(validator, _DRAFTS) else None

    @property
    def fast(self) -> bool:
        return self._fast is not None

    def is_valid(self, instance: Any) -> bool:
        return self._fast(instance) if self._fast is not None else self.jsonschema.is_valid(instance)

    def iter_errors(self, instance: Any) -> Iterator[jsonschema.ValidationError]:
        return self.jsonschema.iter_errors(instance)


def compile_flat(schema: Any) -> Callable[[Any], bool] | None:
    """A check equal to validating against `schema`, or None when the schema is not a flat object."""
    if not isinstance(schema, dict) or schema.get("type") != "object" or not set(schema) <= _ROOT_KEYS:
        return None
    properties, required = schema.get("properties", {}), schema.get("required", [])
    extra = schema.get("additionalProperties", True)
    if not isinstance(properties, dict) or not isinstance(required, list) or extra not in (True, False):
        return None
    if not all(isinstance(name, str) for name in required):
        return None
    checks: dict[str, Callable[[Any], bool] | None] = {}
    for name, sub in properties.items():
        if not isinstance(sub, dict) or not set(sub) <= {"type"} | _ANNOTATIONS:
            return None
        kind = sub.get("type")
        if kind is not None and (not isinstance(kind, str) or kind not in _TYPE_CHECKS):
            return None  # a list of types, or not a type at all
        checks[name] = _TYPE_CHECKS[kind] if kind is not None else None  # None: any value
    return _flat_check(checks, tuple(required), closed=extra is False)


def _flat_check(checks: dict[str, Callable[[Any], bool] | None], required: tuple[str, ...], closed: bool):
    def is_valid(instance: Any) -> bool:
        if not isinstance(instance, dict) or not all(name in instance for name in required):
            return False
        for name, value in instance.items():
            if name not in checks:
                if closed:
                    return False
                continue
            check = checks[name]
            if check is not None and not check(value):
                return False
        return True

    return is_valid
