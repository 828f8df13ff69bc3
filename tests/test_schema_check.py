"""The compiled check for flat object schemas (schema_check.py) agrees with jsonschema on every instance."""

from __future__ import annotations

import random

import pytest

from agentroll.schema_check import Validator, build
from agentroll.tools import make_builtin, tool
from tests.renderers.conformance import TOOLS


@tool
def typed(name: str, count: int, ratio: float, flag: bool = False, anything=None) -> str:
    """Every JSON type a signature gives a flat schema."""
    return name


FLAT = {
    "calculator": make_builtin("calculator").spec.input_schema,
    "typed": typed.spec.input_schema,
    "conformance calculator": TOOLS[0].input_schema,
    "open object, every type": {
        "type": "object",
        "properties": {k: {"type": k} for k in ("string", "integer", "number", "boolean", "null", "array", "object")},
        "required": ["integer", "null"],
    },
    "no properties": {"type": "object"},
    "draft 7": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "additionalProperties": False,
    },
}
NOT_FLAT = {
    "refs and bounds": TOOLS[1].input_schema,
    "draft 4 (1.0 is not an integer)": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"n": {"type": "integer"}},
    },
    "enum": {"type": "object", "properties": {"mode": {"type": "string", "enum": ["a", "b"]}}},
    "list of types": {"type": "object", "properties": {"x": {"type": ["string", "null"]}}},
    "nested": {"type": "object", "properties": {"x": {"type": "array", "items": {"type": "integer"}}}},
    "schema for additional properties": {"type": "object", "additionalProperties": {"type": "string"}},
    "not an object": {"type": "string"},
}
VALUES = [0, 1, -3, 2**70, 1.0, 2.5, float("nan"), True, False, None, "", "s", [], [1], {}, {"a": 1}]
KEYS = ["expression", "name", "count", "ratio", "flag", "anything", "n", "x", "mode", "string", "integer",
        "number", "boolean", "null", "array", "object", "extra"]  # fmt: skip


def _instances(rng: random.Random, schema: dict, n: int = 3000):
    """Non-objects, and objects that mostly carry the required fields, with values of every JSON type."""
    required = schema.get("required", [])
    for _ in range(n):
        if rng.random() < 0.05:
            yield rng.choice(VALUES)  # not an object at all
            continue
        keys = {k for k in required if rng.random() < 0.95} | set(rng.sample(KEYS, rng.randint(0, 3)))
        yield {k: rng.choice(VALUES) for k in keys}


def _validator(schema: dict) -> Validator:
    return build(schema)


@pytest.mark.parametrize("name", sorted(FLAT))
def test_the_compiled_check_agrees_with_jsonschema(name):
    v = _validator(FLAT[name])
    assert v.fast
    outcomes = set()
    for instance in _instances(random.Random(name), FLAT[name]):
        got, want = v.is_valid(instance), v.jsonschema.is_valid(instance)
        assert got == want, instance
        outcomes.add(got)
    assert outcomes == {True, False}


@pytest.mark.parametrize("name", sorted(NOT_FLAT))
def test_other_schemas_are_left_to_jsonschema(name):
    v = _validator(NOT_FLAT[name])
    assert not v.fast
    for instance in _instances(random.Random(name), NOT_FLAT[name], 300):
        assert v.is_valid(instance) == v.jsonschema.is_valid(instance)


def test_errors_are_still_worded_by_jsonschema():
    v = _validator(FLAT["calculator"])
    (error,) = v.iter_errors({"expression": 3})
    assert error.message == "3 is not of type 'string'"
