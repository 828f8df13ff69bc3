"""Request bodies of the OpenAI-compatible API (pydantic at the edge).

Unknown fields are rejected (400 naming the field) so a typo never silently changes sampling.
Fields OpenAI clients routinely send but that do not change generation (`user`, `store`,
`metadata`, ...) are declared and ignored. Messages stay plain dicts here: they are checked by
`Message.from_openai`, whose errors name the message index and field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_STRICT = ConfigDict(extra="forbid", frozen=True)


class FunctionName(BaseModel):
    model_config = _STRICT

    name: str


class NamedToolChoice(BaseModel):
    model_config = _STRICT

    type: Literal["function"] = "function"
    function: FunctionName


class FunctionDef(BaseModel):
    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(BaseModel):
    model_config = _STRICT

    type: Literal["function"] = "function"
    function: FunctionDef


class JSONSchemaFormat(BaseModel):
    model_config = _STRICT

    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = _STRICT

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class StreamOptions(BaseModel):
    model_config = _STRICT

    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class _Sampling(BaseModel):
    """What chat and text completions share: sampling, logprobs, agentroll/Letta extensions."""

    model_config = _STRICT

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=-1)  # extension (vLLM)
    min_p: float | None = Field(None, ge=0.0, le=1.0)  # extension (vLLM)
    repetition_penalty: float | None = Field(None, gt=0.0)  # extension (vLLM)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=8)
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)  # only 0 is supported
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)  # only 0 is supported
    logit_bias: dict[str, float] | None = None  # only empty is supported
    user: str | None = None
    # Extensions (as Letta's server names them): token capture without a session.
    return_token_ids: bool = False
    return_logprobs: bool | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[ToolDef] | None = None
    tool_choice: Literal["auto", "required", "none"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    # Accepted and ignored: they do not change what is generated.
    store: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    verbosity: str | None = None
    modalities: list[str] | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[int] | list[str] = Field(min_length=1)
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1, le=1)


class RewardRequest(BaseModel):
    """POST /sessions/{id}/reward: the total, named components (merged), and the task it belongs to."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    reward: float | None = None
    rewards: dict[str, float] = Field(default_factory=dict)
    task_id: str | None = None  # groups sessions of one task (GRPO's uid in the verl export)
