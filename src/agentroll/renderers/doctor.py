"""Is a model's chat template safe for token-exact RL? Probes a template the way an episode uses it.

Checks, each on real renders of scripted conversations:
- tool-call format: which parser recovers a call the template itself wrote;
- stop tokens: what ends an assistant turn, and that it is one token;
- prefix stability: for each scenario (tool loop, second tool round, user follow-up, reasoning kept or
  dropped) the bridge either equals the full re-render or says it starts a new segment; a bridge that
  silently differs is unsafe, and the breaking case is shown as a diff;
- thinking: whether reasoning of earlier turns survives in history.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

from agentroll.renderers.hf import TemplateConfig, TemplateRenderer
from agentroll.types import Message, ToolCall, ToolSpec

PROBE_TOOL = ToolSpec(
    name="lookup",
    description="Look a key up.",
    input_schema={"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]},
)
_CALL = ToolCall(id="call0abcd", name="lookup", arguments={"key": "alpha"})
_CALL2 = ToolCall(id="call1efgh", name="lookup", arguments={"key": "beta"})
_STOP_CANDIDATES = ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<｜end▁of▁sentence｜>", "</s>", "<|end|>",
                    "<|return|>", "<|call|>", "<|endoftext|>", "[/TOOL_CALLS]")  # fmt: skip
_FORMAT_SIGNATURES = (  # (marker in the rendered call turn, parser name), most specific first
    ("<|tool_calls_section_begin|>", "kimi_k2"),
    ("<｜tool▁calls▁begin｜>", "deepseek_v3"),
    ("<function=", "qwen3_coder"),
    ("<arg_key>", "glm45"),
    ("<tool_call>", "hermes"),
    ("[TOOL_CALLS]", "mistral"),
    ("<|channel|>", "openai"),
    ('"parameters"', "llama3_json"),
    ("lookup(key=", "pythonic"),
)


@dataclass
class Scenario:
    name: str
    ok: bool
    new_segment: bool = False
    reason: str | None = None
    diff: str | None = None


@dataclass
class Report:
    tool_format: str | None
    tool_call_parses: bool
    stop_tokens: list[str]
    stop_token_ids: list[int]
    thinking: str  # "none" | "kept" | "dropped after a user turn" | "always dropped"
    stateful: bool
    scenarios: list[Scenario] = field(default_factory=list)
    recommended: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "safe": self.safe}


def diagnose(hf_tokenizer: Any, chat_template: str, *, registered: dict[str, str] | None = None) -> Report:
    """Probe `chat_template` over `hf_tokenizer`; `registered` maps renderer names to their templates."""
    plain, call_turn = _probe_conventions(hf_tokenizer, chat_template)
    tool_format = next((name for marker, name in _FORMAT_SIGNATURES if call_turn and marker in call_turn), None)
    stops = _stop_tokens(plain, hf_tokenizer)
    problems: list[str] = []
    if not stops:
        problems.append("no single-token stop token ends an assistant turn")
    config = _with(plain.config, tool_format=tool_format, stop_tokens=tuple(stops), reasoning_tags=_think_tags(plain))
    renderer = TemplateRenderer("probe", hf_tokenizer, chat_template, config)
    parses = tool_format is not None and _call_round_trips(renderer)
    if call_turn is None:
        problems.append("the template cannot render an assistant tool call")
    elif not parses:
        problems.append(f"no parser recovers the call the template writes: {call_turn!r}")

    thinking = _thinking(plain)
    scenarios = _scenarios(renderer, with_reasoning=thinking != "none") if stops else []
    stateful = False
    if any(not s.ok for s in scenarios):
        stateful_renderer = TemplateRenderer("probe", hf_tokenizer, chat_template, _with(config, stateful=True))
        retry = _scenarios(stateful_renderer, with_reasoning=thinking != "none")
        if all(s.ok for s in retry):
            stateful, scenarios = True, retry
    problems += [f"scenario {s.name!r}: the bridge differs from a full render" for s in scenarios if not s.ok]
    match = next((n for n, t in (registered or {}).items() if t == chat_template), None)
    recommended = match or (
        f"TemplateRenderer(tool_format={tool_format!r}, stop_tokens={stops}, stateful={stateful}, "
        f"content_required={config.content_required}, arguments_as_json={config.arguments_as_json})"
    )
    return Report(
        tool_format=tool_format,
        tool_call_parses=parses,
        stop_tokens=stops,
        stop_token_ids=renderer.stop_token_ids(),
        thinking=thinking,
        stateful=stateful,
        scenarios=scenarios,
        recommended=recommended,
        problems=problems,
    )


def _probe_conventions(hf: Any, template: str) -> tuple[TemplateRenderer, str | None]:
    """Find how the template wants a tool-call turn: content None or "", arguments as object or JSON text."""
    first: tuple[TemplateRenderer, str | None] | None = None
    for content_required, as_json in ((False, False), (True, False), (False, True), (True, True)):
        config = TemplateConfig(
            tool_format=None, stop_tokens=(), content_required=content_required, arguments_as_json=as_json
        )
        r = TemplateRenderer("probe", hf, template, config)
        turn = _assistant_text(r, Message(role="assistant", content=None, tool_calls=(_CALL,)))
        first = first or (r, turn)
        if turn is not None and '"alpha"' in turn:  # JSON arguments, not a Python repr
            return r, turn
    assert first is not None
    return first


def _with(config: TemplateConfig, **changes: Any) -> TemplateConfig:
    return TemplateConfig(**{**asdict(config), **changes})


def _assistant_text(r: TemplateRenderer, message: Message) -> str | None:
    """What the template writes for `message` after a generation prompt, or None if it cannot."""
    history = [Message(role="user", content="Find alpha.")]
    try:
        prompt = r.render_text(history, [PROBE_TOOL], add_generation_prompt=True)
        full = r.render_text([*history, message], [PROBE_TOOL], add_generation_prompt=False)
    except Exception:
        return None
    return full[len(prompt) :] if full.startswith(prompt) else None


def _stop_tokens(r: TemplateRenderer, hf: Any) -> list[str]:
    """Special tokens right after an assistant turn's content: what the model must emit to stop."""
    turn = _assistant_text(r, Message(role="assistant", content="PROBE_CONTENT")) or ""
    after = turn.split("PROBE_CONTENT", 1)[-1]
    specials = sorted({t.content for t in hf.added_tokens_decoder.values()}, key=len, reverse=True)
    found = next((s for s in specials if after.lstrip(" ").startswith(s)), None)
    stops = [found] if found else []
    stops += [s for s in _STOP_CANDIDATES if s in specials and s not in stops and s in (hf.eos_token, "<|eom_id|>")]
    return [s for s in stops if r.tokenizer.token_id(s) is not None]


def _think_tags(r: TemplateRenderer) -> tuple[str, str] | None:
    return ("<think>", "</think>") if "<think>" in r.chat_template else None


def _call_round_trips(r: TemplateRenderer) -> bool:
    turn = _assistant_text(r, Message(role="assistant", content=None, tool_calls=(_CALL,)))
    if turn is None:
        return False
    ids = r.tokenizer.encode(turn)
    stop_at = next((i for i, t in enumerate(ids) if t in r.stop_token_ids()), len(ids) - 1)
    parsed = r.parse(ids[: stop_at + 1], [PROBE_TOOL])
    return [(c.name, c.arguments) for c in parsed.message.tool_calls] == [(_CALL.name, _CALL.arguments)]


def _thinking(r: TemplateRenderer) -> str:
    if "<think>" not in r.chat_template and "reasoning" not in r.chat_template and "thinking" not in r.chat_template:
        return "none"
    thought = Message(role="assistant", content="Done.", reasoning="PROBE_REASONING")
    base = [Message(role="user", content="Hi.")]
    try:
        loop = r.render_text([*base, thought, Message(role="user", content="Again.")], add_generation_prompt=True)
        last = r.render_text([*base, thought], add_generation_prompt=False)
    except Exception:
        return "unknown (the template failed on reasoning)"
    if "PROBE_REASONING" not in last:
        return "always dropped"
    return "kept" if "PROBE_REASONING" in loop else "dropped after a user turn"


def _scenarios(r: TemplateRenderer, *, with_reasoning: bool) -> list[Scenario]:
    user = Message(role="user", content="Find alpha, then beta.")
    call = Message(role="assistant", content=None, tool_calls=(_CALL,))
    result = Message(role="tool", content="A-1", tool_call_id=_CALL.id, name="lookup")
    call2 = Message(role="assistant", content=None, tool_calls=(_CALL2,))
    result2 = Message(role="tool", content="B-2", tool_call_id=_CALL2.id, name="lookup")
    answer = Message(role="assistant", content="alpha is A-1, beta is B-2.")
    follow = Message(role="user", content="Thanks. And gamma?")
    thought = Message(role="assistant", content=None, reasoning="I should look it up.", tool_calls=(_CALL,))
    cases = {
        "tool loop": ([user], [(call, [result])]),
        "second tool round": ([user], [(call, [result]), (call2, [result2])]),
        "user follow-up": ([user], [(call, [result]), (answer, [follow])]),
    }
    if with_reasoning:
        cases["reasoning then tool result"] = ([user], [(thought, [result])])
        cases["reasoning then user turn"] = ([user], [(thought, [result]), (answer, [follow])])
    return [_run_scenario(r, name, initial, turns) for name, (initial, turns) in cases.items()]


def _run_scenario(r: TemplateRenderer, name: str, initial: list[Message], turns: list) -> Scenario:
    """Build the episode by bridging; compare with a full render after every bridge."""
    tools = [PROBE_TOOL]
    history = list(initial)
    try:
        tokens = r.render(history, tools)
        new_segment, reason = False, None
        for message, new in turns:
            turn = _assistant_text_after(r, history, message)
            if turn is None:
                # The template contradicts itself: the prompt the model continues is not how it renders the turn.
                return Scenario(name, False, False, "the generation prompt is not a prefix of the finished turn")
            tokens += turn
            history.append(message)
            bridge = r.bridge(history, new, tools)
            history.extend(new)
            expected = r.render(history, tools)
            if bridge.new_segment:
                new_segment, reason, tokens = True, bridge.reason, list(bridge.token_ids)
            else:
                tokens += bridge.token_ids
            if tokens != expected:
                return Scenario(name, False, new_segment, reason, _diff(r, expected, tokens))
    except Exception as e:  # a template that raises on a scenario is a finding, not a crash
        return Scenario(name, False, False, f"the template failed: {e}")
    return Scenario(name, True, new_segment, reason)


def _assistant_text_after(r: TemplateRenderer, history: list[Message], message: Message) -> list[int] | None:
    prompt = r.render(history, [PROBE_TOOL])
    full = r.render([*history, message], [PROBE_TOOL], add_generation_prompt=False)
    if full[: len(prompt)] != prompt:
        return None
    turn = full[len(prompt) :]
    stop_at = next((i for i, t in enumerate(turn) if t in r.stop_token_ids()), len(turn) - 1)
    return turn[: stop_at + 1]


def _diff(r: TemplateRenderer, expected: list[int], actual: list[int]) -> str:
    lines = difflib.unified_diff(
        r.tokenizer.decode(expected).splitlines(), r.tokenizer.decode(actual).splitlines(),
        "full render", "episode (bridged)", lineterm="", n=1,
    )  # fmt: skip
    return "\n".join(lines)
