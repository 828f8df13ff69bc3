"""Wire-level value types (L0): messages, tools, tool calls, sampling.

Pydantic at the edges: every model forbids unknown fields and is frozen, so a
typo in a config or a request is a validation error naming the field, never a
silently ignored key.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(extra="forbid", frozen=True)

Role = Literal["system", "user", "assistant", "tool"]
JSONSchema = dict[str, Any]


class ToolCall(BaseModel):
    """A call the model made. `arguments` is parsed JSON; `raw` is the model's text for them."""

    model_config = _STRICT

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw: str | None = None

    def to_openai(self) -> dict[str, Any]:
        import json

        args = self.raw if self.raw is not None else json.dumps(self.arguments, ensure_ascii=False)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": args}}


class Message(BaseModel):
    """One chat message. Assistant messages may carry reasoning and tool calls."""

    model_config = _STRICT

    role: Role
    content: str | None = None
    reasoning: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _check_role_fields(self) -> Message:
        if self.role != "assistant" and (self.tool_calls or self.reasoning is not None):
            raise ValueError(f"tool_calls/reasoning: only assistant messages carry them, not {self.role}")
        if self.role in ("system", "user", "tool") and self.content is None:
            raise ValueError(f"content: required for a {self.role} message")
        if self.role != "tool" and self.tool_call_id is not None:
            raise ValueError("tool_call_id: only tool messages carry one")
        return self

    @classmethod
    def from_openai(cls, d: dict[str, Any]) -> Message:
        """An OpenAI chat message (tool-call arguments as a JSON string or an object) -> Message."""
        import json

        d = dict(d)
        calls = []
        for i, c in enumerate(d.pop("tool_calls", None) or []):
            fn = c.get("function", c)
            args, raw = fn.get("arguments", {}), None
            if isinstance(args, str):
                raw = args
                try:
                    args = json.loads(args) if args.strip() else {}
                except json.JSONDecodeError as e:
                    raise ValueError(f"tool_calls[{i}].function.arguments: not valid JSON: {e}") from e
            calls.append(ToolCall(id=c.get("id") or f"call_{i}", name=fn["name"], arguments=args, raw=raw))
        reasoning = d.pop("reasoning_content", None)
        if reasoning is not None and d.get("reasoning") is None:
            d["reasoning"] = reasoning
        return cls.model_validate({**d, "tool_calls": tuple(calls)})

    def to_hf(self) -> dict[str, Any]:
        """The dict shape Hugging Face chat templates expect (OpenAI-style tool_calls)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.reasoning is not None:
            out["reasoning_content"] = self.reasoning
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


class ToolSpec(BaseModel):
    """A tool as the model sees it: full JSON Schema in, optional JSON Schema out.

    Schemas are kept verbatim ($ref/$defs, nested objects, enums survive untouched).
    """

    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")
    description: str = ""
    input_schema: JSONSchema = Field(default_factory=lambda: {"type": "object", "properties": {}})
    output_schema: JSONSchema | None = None

    def to_openai(self) -> dict[str, Any]:
        fn: dict[str, Any] = {"name": self.name, "description": self.description, "parameters": self.input_schema}
        return {"type": "function", "function": fn}

    @classmethod
    def from_openai(cls, tool: dict[str, Any]) -> ToolSpec:
        """Accept `{"type": "function", "function": {...}}` or the bare function object."""
        fn = tool.get("function", tool)
        return cls(
            name=fn["name"],
            description=fn.get("description") or "",
            input_schema=fn.get("parameters") or {"type": "object", "properties": {}},
            output_schema=fn.get("output_schema"),
        )


class ToolResult(BaseModel):
    """What a tool returned: `content` goes to the model, `metadata` to rewards and analysis."""

    model_config = _STRICT

    tool_call_id: str
    name: str
    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    is_error: bool = False
    duration_s: float = 0.0

    def to_message(self) -> Message:
        return Message(role="tool", content=self.content, tool_call_id=self.tool_call_id, name=self.name)


class SamplingParams(BaseModel):
    """Sampling knobs shared by every engine. `logprobs` is the top-k to return (0: sampled only)."""

    model_config = _STRICT

    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(-1, ge=-1)
    min_p: float = Field(0.0, ge=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    seed: int | None = None
    repetition_penalty: float = Field(1.0, gt=0.0)
    logprobs: int = Field(0, ge=0, le=20)
    ignore_eos: bool = False
    # Constrain the output to this JSON Schema (the engine's guided decoding). The engine masks logits,
    # so a recorded logprob is of the constrained step, not of the free policy: don't train on it blindly.
    json_schema: JSONSchema | None = None
    # Constrain the output to this structural tag (vLLM / xgrammar `{"type": "structural_tag", "format": ...}`):
    # what guided tool calls use (the call's JSON under the tool's schema, then the template's closing text).
    # The same caveat: the logprobs are of the constrained distribution.
    structural_tag: dict[str, Any] | None = None


class ParseStatus(enum.StrEnum):
    """How a tool call (or a whole assistant turn) parsed. Anything but OK is still recorded."""

    OK = "ok"
    INVALID_JSON = "invalid_json"
    INVALID_ARGUMENTS = "invalid_arguments"  # JSON parsed, but arguments are not an object
    MISSING_NAME = "missing_name"
    UNKNOWN_TOOL = "unknown_tool"
    SCHEMA_MISMATCH = "schema_mismatch"
    TRUNCATED = "truncated"  # the turn ended inside a call


ParseMode = Literal["strict", "lenient"]
"""strict: only well-formed calls are usable (the rollout default). lenient: also the calls vLLM's parsers
would accept after a repair, each marked `salvaged` (the server's default)."""


Enforcement = Literal["opener", "guided"]
"""How tool_choice required / named is kept: the template's call opener forced (opener), or also the rest of
the call held to a valid one by the engine's guided decoding (guided: agent/toolchoice.py)."""


class ParsedToolCall(BaseModel):
    """One tool call found in a model turn, well-formed or not.

    `span` is [start, end) in the unit the parser was given: characters of the
    text, or token indices when parsed from token IDs. `call` is set only when
    a name and an argument object could be recovered.
    """

    model_config = _STRICT

    status: ParseStatus
    raw: str
    span: tuple[int, int]
    call: ToolCall | None = None
    error: str | None = None
    # Set only by a lenient parse: what was repaired to make this call usable ("unclosed": the turn ended
    # where the closing marker belonged; "arguments_string": the arguments were a JSON-encoded string; every
    # name in docs/toolcalls.md). A strict parse reports such a call with its failure status instead; a format
    # reward can tell either way.
    salvaged: str | None = None


class ParsedMessage(BaseModel):
    """The result of parsing a sampled turn: the assistant message plus every call's status."""

    model_config = _STRICT

    message: Message
    tool_calls: tuple[ParsedToolCall, ...] = ()
    stopped: bool = True  # the turn ended with a stop token (False: truncated)

    @property
    def status(self) -> ParseStatus:
        """OK when every call parsed; otherwise the first failing call's status."""
        bad = next((c.status for c in self.tool_calls if c.status != ParseStatus.OK), None)
        return bad or ParseStatus.OK
