"""JSON Schema validation of tool arguments and outputs, with errors worded for the model.

The model reads these messages and should be able to fix its call from them, so each
error names the argument by its path (`argument items[0].qty: ...`) instead of dumping
a validator traceback. The full schema is used as given: $ref/$defs, recursion, arrays
of objects and the schema's own `$schema` draft are honoured by `jsonschema`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError

from agentroll import schema_check
from agentroll.errors import ConfigError
from agentroll.schema_check import Validator

_MAX_ERRORS = 5  # enough for the model to fix a call; more only buries the first one


def make_validator(schema: dict[str, Any], *, what: str) -> Validator:
    """A validator for `schema` under its declared draft (2020-12 when it declares none).

    Raises ConfigError when the schema itself is invalid: that is the tool author's bug,
    found when the tool is built, not when the model first calls it.
    """
    try:
        return schema_check.build(schema)  # with a fast path for flat object schemas
    except SchemaError as e:
        raise ConfigError(f"{what}: invalid JSON Schema: {e.message}") from e


def argument_errors(validator: Validator, arguments: Any) -> list[str]:
    """Every way `arguments` breaks the input schema, one line each; [] when valid."""
    if validator.is_valid(arguments):  # the common case: collecting errors costs more than one check
        return []
    return _describe(validator.iter_errors(arguments), noun="argument")


def output_errors(validator: Validator, output: Any) -> list[str]:
    """Every way a tool's output breaks its output schema, one line each; [] when valid."""
    if validator.is_valid(output):
        return []
    return _describe(validator.iter_errors(output), noun="output")


def _describe(errors: Iterable[ValidationError], *, noun: str) -> list[str]:
    ordered = sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.message))
    lines = [_line(e, noun) for e in ordered[:_MAX_ERRORS]]
    if len(ordered) > _MAX_ERRORS:
        lines.append(f"... and {len(ordered) - _MAX_ERRORS} more")
    return lines


def _line(error: ValidationError, noun: str) -> str:
    # The most specific sub-error of an anyOf/oneOf says more than "is not valid under any".
    best = jsonschema.exceptions.best_match([error]) if error.context else error
    path = _path(best.absolute_path)
    if best.validator == "required":
        missing = _missing_property(best)
        where = f"{path}.{missing}" if path else missing
        return f"{noun} {where}: required but missing"
    return f"{noun} {path or '(top level)'}: {best.message}"


def _missing_property(error: ValidationError) -> str:
    # jsonschema words it as "'x' is a required property"; recover x without parsing prose.
    required = error.validator_value if isinstance(error.validator_value, list) else []
    instance = error.instance if isinstance(error.instance, dict) else {}
    return next((name for name in required if name not in instance), "?")


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
