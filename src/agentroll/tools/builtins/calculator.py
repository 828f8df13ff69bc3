"""`calculator`: exact arithmetic on an expression, evaluated from its AST (never eval/exec).

Only numbers, + - * / // % **, unary signs, parentheses and a few named functions and
constants are allowed; anything else (names, attributes, calls to other functions,
subscripts, comprehensions) is refused with a message saying what was found. Sizes are
bounded so `9**9**9` is an error, not a frozen worker.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from agentroll.errors import ToolValidationError
from agentroll.tools.base import FunctionTool, ToolOutput, function_tool

_MAX_EXPONENT = 10_000
_MAX_DIGITS = 4_300  # Python's own int->str limit; a bigger result could not be printed anyway
_MAX_BITS = int(_MAX_DIGITS * 3.33)
_MAX_LENGTH = 2_000

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
    "factorial": math.factorial,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


def evaluate(expression: str) -> int | float:
    """The value of an arithmetic expression; raises ToolValidationError for anything else."""
    if len(expression) > _MAX_LENGTH:
        raise ToolValidationError(f"expression is {len(expression)} characters; the limit is {_MAX_LENGTH}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise ToolValidationError(f"not an arithmetic expression: {e.msg} at column {e.offset}") from e
    try:
        return _eval(tree.body)
    except ToolValidationError:
        raise
    except ZeroDivisionError as e:
        raise ToolValidationError("division by zero") from e
    except (OverflowError, ValueError) as e:
        raise ToolValidationError(f"math error: {e}") from e


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        return _check_size(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if node.keywords:
            raise ToolValidationError(f"{node.func.id}(): keyword arguments are not supported")
        args = [_eval(a) for a in node.args]
        if node.func.id == "factorial" and args and isinstance(args[0], int) and args[0] > 1000:
            raise ToolValidationError("factorial(): argument larger than 1000")
        return _check_size(_FUNCTIONS[node.func.id](*args))
    raise ToolValidationError(f"not allowed in an arithmetic expression: {_describe(node)}")


def _check_power(base: Any, exponent: Any) -> None:
    # Refuse before computing: the size of base**exponent is known from the operands.
    if abs(base) in (0, 1):
        return
    if abs(exponent) > _MAX_EXPONENT:
        raise ToolValidationError(f"exponent {exponent} is too large (limit {_MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and base.bit_length() * exponent > _MAX_BITS:
        raise ToolValidationError(f"result has more than {_MAX_DIGITS} digits")


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise ToolValidationError(f"result has more than {_MAX_DIGITS} digits")
    if isinstance(value, complex):
        raise ToolValidationError("result is a complex number")
    return value


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"name {node.id!r} (known names: {', '.join([*_CONSTANTS, *_FUNCTIONS])})"
    if isinstance(node, ast.Constant):
        return f"constant {node.value!r}"
    if isinstance(node, ast.Call):
        return f"call of {_describe(node.func)}"
    return type(node).__name__


def calculator(expression: str) -> ToolOutput:
    """Evaluate an arithmetic expression exactly and return its value.

    Supports + - * / // % ** and parentheses, the constants pi and e, and the functions
    abs, round, min, max, sqrt, exp, log, log10, log2, sin, cos, tan, floor, ceil, factorial.

    Args:
        expression: The expression to evaluate, for example "(3 + 4) * 12 / 7".
    """
    value = evaluate(expression)
    return ToolOutput(content=repr(value), metadata={"value": value}, structured=value)


def make_calculator() -> FunctionTool:
    # Inline: every expression is bounded (length, exponent, digits, factorial), so a call takes
    # microseconds, less than handing it to a worker thread.
    return function_tool(calculator, output_schema=False, inline=True)
