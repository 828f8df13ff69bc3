"""OpenAI request -> what agentroll generates from: messages, tools, sampling, forced opener.

Every check raises APIError(400) naming the field, so a malformed request never reaches the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema

from agentroll.agent.toolchoice import call_opener
from agentroll.errors import RenderError
from agentroll.server.errors import APIError
from agentroll.server.protocol import ChatCompletionRequest, _Sampling
from agentroll.types import Enforcement, Message, ParseMode, SamplingParams, ToolSpec


@dataclass(slots=True)
class ChatCall:
    messages: list[Message]
    tools: list[ToolSpec]
    sampling: SamplingParams
    forced: list[int]  # the template's tool-call opener for tool_choice required / named
    logprobs: bool  # return OpenAI logprobs
    top_logprobs: int
    token_ids: bool  # return prompt/completion token IDs (extension)
    parallel_tool_calls: bool
    max_tokens_given: bool = True  # False: the server's default, which shrinks to fit the context
    tool_parse: ParseMode = "lenient"  # as vLLM's parsers: repaired calls are returned (marked salvaged)


def chat_call(
    req: ChatCompletionRequest,
    renderer: Any,
    default_max_tokens: int,
    tool_parse: ParseMode = "lenient",
    enforcement: Enforcement = "guided",
) -> ChatCall:
    messages = [_message(m, i) for i, m in enumerate(req.messages)]
    tools = _tools(req)
    choice = _tool_choice(req, tools)
    if choice == "none":
        tools = []  # as the episode loop does: a call the model cannot make is not offered
    schema = _response_schema(req, tools)
    want_logprobs = bool(req.logprobs or req.return_logprobs)
    if req.top_logprobs and not want_logprobs:
        raise APIError(400, "top_logprobs: requires logprobs: true", param="top_logprobs")
    check_stream_options(req)
    max_tokens = req.max_completion_tokens or req.max_tokens
    sampling = sampling_params(req, renderer, max_tokens or default_max_tokens, req.top_logprobs or 0)
    forced, tag = _forced(renderer, tools, choice, enforcement)
    if tag is not None:
        sampling = sampling.model_copy(update={"structural_tag": tag})
    return ChatCall(
        tool_parse=tool_parse,
        messages=messages,
        tools=tools,
        sampling=sampling.model_copy(update={"json_schema": schema}) if schema else sampling,
        forced=forced,
        logprobs=want_logprobs,
        top_logprobs=req.top_logprobs or 0,
        token_ids=req.return_token_ids,
        parallel_tool_calls=req.parallel_tool_calls is not False,
        max_tokens_given=max_tokens is not None,
    )


def check_stream_options(req: Any) -> None:
    if req.stream_options is not None and not req.stream:
        raise APIError(400, "stream_options: only allowed with stream: true", param="stream_options")


def fitted(sampling: SamplingParams, given: bool, prompt_len: int, window: int | None) -> SamplingParams:
    """A default max_tokens shrinks to what the context has left, as vLLM's does; one the client set is
    kept (too large is a 400 naming it)."""
    if given or window is None or prompt_len + sampling.max_tokens <= window or prompt_len >= window:
        return sampling
    return sampling.model_copy(update={"max_tokens": window - prompt_len})


def sampling_params(req: _Sampling, renderer: Any, max_tokens: int, top_logprobs: int) -> SamplingParams:
    """Engine sampling; the renderer's stop tokens always apply. Logprobs are always captured."""
    for name in ("presence_penalty", "frequency_penalty"):
        if getattr(req, name):
            raise APIError(400, f"{name}: only 0 is supported", param=name)
    if req.logit_bias:
        raise APIError(400, "logit_bias: not supported", param="logit_bias")
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stop) > 4 or any(not s for s in stop):
        raise APIError(400, "stop: at most 4 non-empty strings", param="stop")
    options = {
        "temperature": 1.0 if req.temperature is None else req.temperature,
        "top_p": 1.0 if req.top_p is None else req.top_p,
        "top_k": -1 if req.top_k in (None, 0) else req.top_k,
        "min_p": req.min_p or 0.0,
        "repetition_penalty": req.repetition_penalty or 1.0,
    }
    return SamplingParams(
        **options,
        max_tokens=max_tokens,
        stop=tuple(stop),
        stop_token_ids=tuple(renderer.stop_token_ids()),
        seed=req.seed,
        logprobs=top_logprobs,
    )


def _message(raw: dict[str, Any], i: int) -> Message:
    d = dict(raw)
    if d.get("role") == "developer":
        d["role"] = "system"
    for key in ("refusal", "audio", "annotations", "function_call"):
        if d.get(key) is None:
            d.pop(key, None)
    if isinstance(d.get("content"), list):
        d["content"] = _text_parts(d["content"], i)
    try:
        return Message.from_openai(d)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise APIError(400, f"messages[{i}]: {_short(e)}", param=f"messages[{i}]") from e


def _text_parts(parts: list[Any], i: int) -> str:
    """OpenAI content parts: only text parts exist for a text model."""
    texts = []
    for j, p in enumerate(parts):
        if not isinstance(p, dict) or p.get("type") != "text" or not isinstance(p.get("text"), str):
            raise APIError(400, f"messages[{i}].content[{j}]: only text parts are supported", param=f"messages[{i}]")
        texts.append(p["text"])
    return "".join(texts)


def _tools(req: ChatCompletionRequest) -> list[ToolSpec]:
    tools: list[ToolSpec] = []
    for i, t in enumerate(req.tools or []):
        params = t.function.parameters or {"type": "object", "properties": {}}
        try:
            jsonschema.validators.validator_for(params).check_schema(params)
        except (jsonschema.SchemaError, TypeError) as e:
            where = f"tools[{i}].function.parameters"
            raise APIError(400, f"{where}: not a valid JSON Schema: {_short(e)}", param=where) from e
        tools.append(ToolSpec(name=t.function.name, description=t.function.description or "", input_schema=params))
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise APIError(400, "tools: tool names must be unique", param="tools")
    return tools


def _tool_choice(req: ChatCompletionRequest, tools: list[ToolSpec]) -> str:
    choice = req.tool_choice
    if choice is None:
        return "auto" if tools else "none"
    if isinstance(choice, str):
        if choice == "required" and not tools:
            raise APIError(400, "tool_choice: 'required' needs at least one tool in tools", param="tool_choice")
        return choice
    name = choice.function.name
    if name not in {t.name for t in tools}:
        raise APIError(400, f"tool_choice: no tool named {name!r} in tools", param="tool_choice")
    return name


def _forced(
    renderer: Any, tools: list[ToolSpec], choice: str, enforcement: Enforcement
) -> tuple[list[int], dict[str, Any] | None]:
    """tool_choice required / named: the template's call opener, and (guided, where the renderer can build one)
    the structural tag that holds the rest of the turn to a valid call, so a call is guaranteed."""
    if choice in ("auto", "none"):
        return [], None
    try:  # a renderer that cannot guide (mistral, harmony) still forces its opener
        guided = enforcement == "guided" and hasattr(renderer, "guided_call")
        return call_opener(renderer, tools, None if choice == "required" else choice, guided=guided)
    except (AttributeError, RenderError) as e:
        raise APIError(400, f"tool_choice: not supported by renderer {renderer.name}: {e}", param="tool_choice") from e


def _response_schema(req: ChatCompletionRequest, tools: list[ToolSpec]) -> dict[str, Any] | None:
    """The JSON Schema the answer is decoded under, if any.

    Enforced by the engine's guided decoding only when no tool is offered: a schema on every token
    would leave the model no way to call a tool (with tools, it is checked here and not enforced).
    """
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    schema = {"type": "object"} if fmt.type == "json_object" else _checked_schema(req)
    return None if tools else schema


def _checked_schema(req: ChatCompletionRequest) -> dict[str, Any]:
    fmt = req.response_format
    where = "response_format.json_schema"
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise APIError(400, f"{where}: a schema is required", param=where)
    try:
        jsonschema.validators.validator_for(fmt.json_schema.schema_).check_schema(fmt.json_schema.schema_)
    except (jsonschema.SchemaError, TypeError) as e:
        raise APIError(400, f"{where}.schema: not a valid JSON Schema: {_short(e)}", param=f"{where}.schema") from e
    return fmt.json_schema.schema_


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:300]
