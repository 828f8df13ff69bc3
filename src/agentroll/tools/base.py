"""A tool is a ToolSpec (full JSON Schema in, optional out) plus an async `run(arguments)`.

`@tool` turns a Python function (sync or async) into one: pydantic builds the input
schema from the signature (nested models, enums, lists of objects, optionals, $defs
and recursion included) and docstring_parser reads the parameter descriptions, so the
model sees exactly what the type hints say. The Toolset validates arguments against
the schema before `run` is called; `run` may raise, and the Toolset turns that into an
error result.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, get_type_hints

import docstring_parser
import pydantic
import pydantic_core

from agentroll.errors import ConfigError, ToolError, ToolValidationError
from agentroll.types import ToolSpec


@dataclass(slots=True)
class ToolOutput:
    """What a tool produced. Return one from a tool to attach metadata or flag an error yourself.

    `content` is what the model reads (a str is passed as is; anything else is
    serialised to JSON, see `to_content`). `structured` is the JSON value checked
    against the output schema; `metadata` goes to rewards and analysis, never to the model.
    """

    content: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    is_error: bool = False
    structured: Any = None


class Tool(Protocol):
    """The narrow protocol the Toolset runs: a spec, an optional own timeout, and `run`."""

    spec: ToolSpec
    timeout_s: float | None

    async def run(self, arguments: dict[str, Any]) -> Any:
        """Do the work for schema-valid `arguments`; return a value or a ToolOutput, or raise."""
        ...


def to_content(value: Any) -> str:
    """The model-facing text of a tool's value: a str as is, anything else as JSON.

    JSON is written with sorted keys and non-ASCII kept, so the same value always
    renders to the same tokens, whatever order a server or a dict produced it in.
    """
    if isinstance(value, str):
        return value
    return json.dumps(pydantic_core.to_jsonable_python(value), ensure_ascii=False, sort_keys=True)


def as_output(value: Any) -> ToolOutput:
    """Normalise whatever a tool returned into a ToolOutput (raises ToolError on unserialisable values)."""
    out = value if isinstance(value, ToolOutput) else ToolOutput(content=value)
    try:
        if out.structured is None and not isinstance(out.content, str):
            out.structured = pydantic_core.to_jsonable_python(out.content)
        elif out.structured is None:
            out.structured = out.content
        out.content = to_content(out.content)
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError) as e:
        raise ToolError(f"returned a value that is not JSON-serialisable ({type(value).__name__}): {e}") from e
    return out


@dataclass(slots=True)
class FunctionTool:
    """A Python function as a tool. Calling the object calls the function unchanged."""

    spec: ToolSpec
    fn: Callable[..., Any]
    args_model: type[pydantic.BaseModel]
    timeout_s: float | None = None
    # Run a sync function on the event loop instead of a worker thread: for functions bounded to
    # microseconds (the calculator), where the thread hop costs more than the call itself.
    inline: bool = False

    async def run(self, arguments: dict[str, Any]) -> Any:
        try:
            parsed = self.args_model.model_validate(arguments)
        except pydantic.ValidationError as e:  # jsonschema passed it, pydantic did not: still the model's to fix
            raise ToolValidationError(_pydantic_message(e)) from e
        kwargs = {name: getattr(parsed, name) for name in type(parsed).model_fields}
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**kwargs)
        if self.inline:
            return self.fn(**kwargs)
        # A sync function runs in a worker thread so it cannot stall the episode loop. Threads
        # cannot be killed: on timeout the call returns an error and the thread runs on.
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(self.fn, **kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = None,
    output_schema: bool = True,
    inline: bool = False,
) -> Any:
    """Make a FunctionTool from `fn`; usable bare (`@tool`) or with options (`@tool(name=...)`).

    The description is the docstring's summary (and body); parameter descriptions come
    from its Args/Parameters section. With `output_schema=True` a return annotation
    other than str/None/Any/ToolOutput becomes the tool's output schema. `inline=True` runs a sync
    function on the event loop (no worker thread): only for functions that return in microseconds,
    since nothing can interrupt it there (its timeout included).
    """

    def build(f: Callable[..., Any]) -> FunctionTool:
        return function_tool(
            f, name=name, description=description, timeout_s=timeout_s, output_schema=output_schema, inline=inline
        )

    return build(fn) if fn is not None else build


def function_tool(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float | None = None,
    output_schema: bool = True,
    inline: bool = False,
) -> FunctionTool:
    """The FunctionTool for `fn` (see `tool`)."""
    tool_name = name or fn.__name__
    doc = docstring_parser.parse(inspect.getdoc(fn) or "")
    args_model = _args_model(fn, tool_name, {p.arg_name: p.description for p in doc.params if p.description})
    spec = ToolSpec(
        name=tool_name,
        description=description if description is not None else _description(doc),
        input_schema=args_model.model_json_schema(),
        output_schema=_output_schema(fn) if output_schema else None,
    )
    return FunctionTool(spec=spec, fn=fn, args_model=args_model, timeout_s=timeout_s, inline=inline)


def _args_model(fn: Callable[..., Any], tool_name: str, docs: dict[str, str]) -> type[pydantic.BaseModel]:
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tool {tool_name}: *{param.name} cannot be described by a JSON Schema")
        default = ... if param.default is inspect.Parameter.empty else param.default
        info = pydantic.Field(default, description=docs.get(param.name))
        fields[param.name] = (hints.get(param.name, Any), info)
    config = pydantic.ConfigDict(extra="forbid")  # an unknown argument is a mistake the model should hear about
    try:
        return pydantic.create_model(f"{tool_name}_arguments", __config__=config, **fields)
    except (pydantic.PydanticSchemaGenerationError, TypeError) as e:
        raise ConfigError(f"tool {tool_name}: cannot build a JSON Schema from its signature: {e}") from e


def _output_schema(fn: Callable[..., Any]) -> dict[str, Any] | None:
    ret = get_type_hints(fn, include_extras=True).get("return", Any)
    if ret in (Any, str, None, type(None), ToolOutput):
        return None
    try:
        return pydantic.TypeAdapter(ret).json_schema(mode="serialization")
    except pydantic.PydanticSchemaGenerationError:
        return None  # a return type pydantic cannot describe: no output schema, not a broken tool


def _description(doc: docstring_parser.Docstring) -> str:
    parts = [p for p in (doc.short_description, doc.long_description) if p]
    return "\n\n".join(parts)


def _pydantic_message(e: pydantic.ValidationError) -> str:
    lines = []
    for err in e.errors()[:5]:
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"argument {path}: {err['msg']}")
    return "; ".join(lines)
