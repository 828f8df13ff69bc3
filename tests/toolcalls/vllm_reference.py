"""vLLM's own tool parsers (`vllm.tool_parsers`, the `--tool-call-parser` registry) as the reference.

`reference(fmt, text, tools)` and `ours(fmt, text, tools, mode)` both return an Outcome: the content (stripped,
None when empty) and the calls a client would receive as (name, arguments decoded from the JSON string).
The vLLM parser for a format is built with a tokenizer of a model that speaks it (its constructor looks up its
marker tokens), from the tokenizers that ship on PyPI.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from agentroll.renderers.toolcalls import get_parser
from agentroll.types import ToolSpec

# suite -> (agentroll parser, vLLM --tool-call-parser name, tokenizer the vLLM parser is built with)
SUITES: dict[str, tuple[str, str, str]] = {
    "hermes": ("hermes", "hermes", "qwen3"),
    "llama3_json": ("llama3_json", "llama3_json", "llama3"),
    "pythonic": ("pythonic", "pythonic", "llama3"),
    "mistral": ("mistral", "mistral", "mistral-v7"),  # v3-v7: [TOOL_CALLS][{...}]
    "mistral_v11": ("mistral", "mistral", "v11-vocab"),  # v11+: [TOOL_CALLS]name[ARGS]{...}
    "deepseek_v3": ("deepseek_v3", "deepseek_v3", "deepseek-v3"),
    "kimi_k2": ("kimi_k2", "kimi_k2", "qwen3"),
}


@dataclass(frozen=True)
class Outcome:
    content: str | None
    calls: tuple[tuple[str, Any], ...] = ()
    ids: tuple[str, ...] = field(default=(), compare=False)  # call ids, compared where a format carries them
    failed: tuple[str, ...] = field(default=(), compare=False)  # ours: statuses of calls that are not usable
    salvaged: tuple[str, ...] = field(default=(), compare=False)  # ours: what a lenient parse repaired


@cache
def _tokenizer(name: str) -> Any:
    from agentroll.renderers.tokenizers.loader import load_tokenizer

    if name == "v11-vocab":
        # vLLM's mistral parser takes the v11+ path for a Hugging Face tokenizer whose vocabulary has [ARGS]
        # (how it serves Mistral Small 3.2 / Devstral with tokenizer_mode=hf); no v11 tokenizer file ships on
        # PyPI, so these marker tokens are added to a real vocabulary. Only the parser's text logic is used.
        tok = copy.deepcopy(load_tokenizer("qwen3"))
        tok.add_special_tokens({"additional_special_tokens": ["[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"]})
        return tok
    if name.startswith("mistral-"):
        from importlib import resources

        from transformers.tokenization_mistral_common import MistralCommonBackend
        from vllm.tokenizers.mistral import MistralTokenizer

        files = {"mistral-v7": "mistral_instruct_tokenizer_241114.model.v7"}
        path = resources.files("mistral_common") / "data" / files[name]
        return MistralTokenizer(MistralCommonBackend(tokenizer_path=str(path)))
    return load_tokenizer(name)


def _request(tools: tuple[ToolSpec, ...]) -> Any:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    offered = [
        {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}
        for t in tools
    ]
    return ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}], tools=offered or None)


@cache
def _parser(fmt: str, tools_json: str) -> Any:
    """One vLLM parser per format and tool list (building one reads the whole vocabulary: ~0.15 s; some keep
    the request's tools, so a parser is never shared between tool lists). The non-streaming
    `extract_tool_calls` keeps no other state between calls."""
    from vllm.tool_parsers import ToolParserManager

    _, name, tok = SUITES[fmt]
    logging.getLogger("vllm").setLevel(logging.CRITICAL)  # its parsers log every failed call with a traceback
    return ToolParserManager.get_tool_parser(name)(_tokenizer(tok))


def reference(fmt: str, text: str, tools: tuple[ToolSpec, ...] = ()) -> Outcome:
    """What vLLM's non-streaming parser returns for `text`."""
    parser = _parser(fmt, json.dumps([t.model_dump(mode="json") for t in tools], sort_keys=True))
    got = parser.extract_tool_calls(text, _request(tools))
    made = got.tool_calls if got.tools_called else []
    calls = tuple((c.function.name, _decoded(c.function.arguments)) for c in made)
    return Outcome(content=_norm(got.content), calls=calls, ids=tuple(c.id for c in made))


def ours(fmt: str, text: str, tools: tuple[ToolSpec, ...] = (), mode: str = "lenient") -> Outcome:
    """What agentroll hands a client: the message's content and its usable calls."""
    parsed = get_parser(SUITES[fmt][0]).parse(text, tools, mode=mode)
    calls = tuple((c.name, c.arguments) for c in parsed.message.tool_calls)
    return Outcome(
        content=_norm(parsed.message.content),
        calls=calls,
        ids=tuple(c.id for c in parsed.message.tool_calls),
        failed=tuple(p.status.value for p in parsed.tool_calls if p.call is None),
        salvaged=tuple(p.salvaged for p in parsed.tool_calls if p.salvaged),
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decoded(arguments: str) -> Any:
    """JSON as a client reads it: `Infinity` / `NaN` (which vLLM's pythonic parser writes for `1e999`) are not."""
    try:
        return json.loads(arguments, parse_constant=_no_constant)
    except (ValueError, TypeError):
        return ("<not JSON>", arguments)


def _norm(content: str | None) -> str | None:
    return (content or "").strip() or None


# ---- the differences agentroll makes on purpose (docs/toolcalls.md lists them with their reasons) ----

# The marker before which vLLM keeps a turn's text as content (and after which it drops text).
FIRST_MARKER = {
    "hermes": "<tool_call>",
    "mistral": "[TOOL_CALLS]",
    "mistral_v11": "[TOOL_CALLS]",
    "deepseek_v3": "<｜tool▁calls▁begin｜>",
    "kimi_k2": "<|tool_calls_section_begin|>",
}

DELIBERATE = {
    "malformed_call_is_a_status": "vLLM returns the turn's text as content with no calls when any call fails "
    "to parse (mistral: the text after [TOOL_CALLS], dropping what came before); agentroll records each failed "
    "call with its status and keeps the turn's good calls",
    "text_around_calls_kept": "vLLM keeps only the text before the first call as content (hermes, mistral, "
    "deepseek_v3, kimi_k2) or none at all (llama3_json, pythonic); agentroll keeps all text outside the calls "
    "(it was sampled, and the history must hold it)",
    "broken_call_not_returned": "vLLM returns some calls no client can run: arguments that are not JSON (cut "
    'off or broken: deepseek_v3, kimi_k2) or not an object (`[1]`, `"x"`), an empty name, and (kimi_k2) '
    "a call the turn ended in before its arguments, even inside its name (`functions.sea`), with arguments {}; "
    "agentroll records each with its status (invalid_json, invalid_arguments, missing_name, truncated)",
    "more_forms_accepted": "agentroll's pythonic also reads Llama 4's `<|python_start|>...<|python_end|>` "
    "wrapper and dotted names (`math.sqrt`), its deepseek_v3 also DeepSeek-V3.1's form without the json "
    "fence; vLLM reads those with other parsers (llama4_pythonic, deepseek_v31)",
    "set_literal_refused": "pythonic: a Python set argument (`{'a', 'b'}`) has no JSON value; vLLM turns it "
    "into a list in no defined order, agentroll records invalid_arguments",
    "v11_call_id_read": "Mistral v11 writes `[TOOL_CALLS]name[CALL_ID]id[ARGS]{...}`; vLLM's parser knows no "
    "[CALL_ID] and returns the id glued to the name (`get_weather9A5Wa1X1J`); agentroll reads the name and "
    "keeps the id as the call's id",
    "arguments_string_decoded": "vLLM's hermes / llama3_json pass arguments written as a JSON-encoded string "
    "through as a string; a lenient parse decodes them to the object",
    "arguments_bare_string_bound": "hermes / llama3_json: vLLM passes a bare string given for the arguments "
    '(`"arguments": "buy milk"`) through, and no client can call a function with it; a lenient parse binds '
    "it to the one parameter of the tool when the offered tool takes exactly one string, and reports "
    "invalid_arguments otherwise",
    "arguments_key_optional": 'a call object with a name and no arguments key (`{"name": "now"}`): vLLM\'s '
    "hermes / llama3_json return the turn as content; agentroll calls the function with no arguments",
    "non_call_braces_are_content": "llama3_json: vLLM tries every `{` of the turn as a call and returns the whole "
    "turn as content when one is not (`{word}`, a JSON object quoted in prose); agentroll keeps the calls and "
    "leaves that text as content (vLLM's newer parser does too)",
    "every_marker_read": "mistral v3-v7: vLLM reads the list after the first `[TOOL_CALLS]` only and drops what "
    "follows a second one; agentroll reads every list",
}


def explain(fmt: str, text: str, ref: Outcome, got: Outcome) -> tuple[str, ...]:
    """() when ref == got; else the DELIBERATE differences that account for it, or ("unexplained",)."""
    reasons: list[str] = []
    if ref.calls and got.salvaged and len(ref.calls) == len(got.calls):
        for reason in ("arguments_string_decoded", "arguments_bare_string_bound"):
            calls = tuple(_as_object(r, g, reason) for r, g in zip(ref.calls, got.calls, strict=True))
            if calls != ref.calls:
                reasons.append(reason)
                ref = replace(ref, calls=calls)
    broken = [c for c in ref.calls if not c[0] or not isinstance(c[1], dict)]  # no name; arguments not an object
    ended = {"truncated", "invalid_arguments"} & set(got.failed)  # the turn ended before the arguments (kimi_k2)
    if ended and ref.calls and ref.calls[-1][1] == {} and ref.calls[-1] not in got.calls:
        broken.append(ref.calls[-1])
    if got.failed and broken:
        reasons.append("broken_call_not_returned")
        ref = replace(ref, calls=tuple(c for c in ref.calls if c not in broken))
    if "[CALL_ID]" in text and len(ref.calls) == len(got.calls):
        calls = tuple(
            (g[0], r[1]) if re.fullmatch(re.escape(g[0]) + "[A-Za-z0-9]{9}", r[0]) else r
            for r, g in zip(ref.calls, got.calls, strict=True)
        )
        if calls != ref.calls:
            reasons.append("v11_call_id_read")
            ref = replace(ref, calls=calls)
    more = len(got.calls) > len(ref.calls) and got.calls[: len(ref.calls)] == ref.calls
    if fmt == "mistral" and text.count("[TOOL_CALLS]") > 1 and more:
        reasons.append("every_marker_read")
        ref = replace(ref, calls=got.calls)
    marker = FIRST_MARKER.get(fmt)
    head, tail = (text, "") if marker is None or marker not in text else text.split(marker, 1)
    kept_less = ref.content in (None, _norm(head)) and (got.content or "").startswith(ref.content or "")
    if ref.calls == got.calls and (ref.calls or not got.failed) and ref.content != got.content and kept_less:
        reasons.append("text_around_calls_kept")  # vLLM kept less of the text (or none)
        ref = replace(ref, content=got.content)
    gave_up = not ref.calls and ref.content in (_norm(text), _norm(head))
    kept = gave_up and bool(got.calls) and not got.failed
    if kept and fmt in ("hermes", "llama3_json") and all(_named_without_arguments(c, text) for c in got.calls):
        reasons.append("arguments_key_optional")
        ref = replace(ref, calls=got.calls, content=got.content)
    if kept and fmt == "llama3_json" and _a_brace_is_no_call(text):
        reasons.append("non_call_braces_are_content")
        ref = replace(ref, calls=got.calls, content=got.content)
    if gave_up and got.calls and not got.failed and _other_form(fmt, text, got):
        reasons.append("more_forms_accepted")
        ref = replace(ref, calls=got.calls, content=got.content)
    if fmt == "pythonic" and "invalid_arguments" in got.failed and re.search(r"=\{'[^:]*\}", text):
        reasons.append("set_literal_refused")
        ref = replace(ref, calls=got.calls)
    if not ref.calls and got.failed and ref.content in (_norm(text), _norm(tail)):
        reasons.append("malformed_call_is_a_status")  # vLLM gave up on the turn and returned its text
        ref = replace(ref, calls=got.calls, content=got.content)
    if ref != got:
        return ("unexplained",)
    return tuple(reasons)


def _named_without_arguments(call: tuple[str, Any], text: str) -> bool:
    """We called it with no arguments, from an object that has a name and no arguments key."""
    name, args = call
    return args == {} and re.search(rf'"name"\s*:\s*"{re.escape(name)}"\s*}}', text) is not None


def _a_brace_is_no_call(text: str) -> bool:
    """Some `{` of the text does not start a JSON object with a name and arguments (vLLM's llama3_json then
    returns the whole turn as content)."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            return True
        if not isinstance(obj, dict) or "name" not in obj or not ({"arguments", "parameters"} & set(obj)):
            return True
    return False


def _other_form(fmt: str, text: str, got: Outcome) -> bool:
    """A form vLLM reads with another of its parsers (llama4_pythonic, deepseek_v31)."""
    if fmt == "pythonic":
        return "<|python_start|>" in text or any("." in name for name, _ in got.calls)
    if fmt == "deepseek_v3":
        return "function<｜tool▁sep｜>" not in text
    return False


def _as_object(ref: tuple[str, Any], got: tuple[str, Any], how: str) -> tuple[str, Any]:
    """A reference call whose arguments are a string, as we returned it: decoded (a JSON-encoded object) or
    bound to the tool's one parameter (a bare string)."""
    name, args = ref
    if not isinstance(args, str) or name != got[0]:
        return ref
    if how == "arguments_string_decoded" and _decoded(args) == got[1]:
        return name, got[1]
    if how == "arguments_bare_string_bound" and isinstance(got[1], dict) and list(got[1].values()) == [args]:
        return name, got[1]
    return ref


# ---- recovery: does agentroll return every call vLLM returns that a client could run? ----


def _runnable(call: tuple[str, Any]) -> bool:
    """A call vLLM returns that a client could run: a name, and arguments that are an object or a string (a
    JSON-encoded object a lenient parse decodes, or a bare string it binds to the tool's one parameter)."""
    return bool(call[0]) and isinstance(call[1], dict | str)


def _same_call(ref: tuple[str, Any], got: tuple[str, Any], tools: tuple[ToolSpec, ...]) -> bool:
    (name, args), (got_name, got_args) = ref, got
    if name != got_name:
        return False
    if args == got_args:
        return True
    if not isinstance(args, str):
        return False
    if _decoded(args) == got_args:  # arguments written as a JSON-encoded string
        return True
    tool = next((t for t in tools if t.name == name), None)
    props = list((tool.input_schema.get("properties") or {}) if tool else {})
    return len(props) == 1 and got_args == {props[0]: args}  # a bare string, bound to the tool's one parameter


def recovered(ref: Outcome, got: Outcome, tools: tuple[ToolSpec, ...] = ()) -> bool:
    """Every call vLLM returns that a client could run is among agentroll's usable calls, in the same order.
    Calls agentroll returns beyond vLLM's do not count against it (they are listed differences)."""
    rest = iter(got.calls)
    return all(any(_same_call(r, g, tools) for g in rest) for r in ref.calls if _runnable(r))


@dataclass(frozen=True)
class Recovery:
    """How agentroll's parses of one suite's vLLM scenarios compare with vLLM's."""

    suite: str
    cases: int
    strict: int  # cases where a strict parse recovered every call vLLM returns that a client could run
    lenient: int  # the same for a lenient parse
    lost: tuple[str, ...]  # the lenient parse's misses: "scenario (why)", the why from DELIBERATE


def recovery() -> list[Recovery]:
    """Per suite, tests/toolcalls/vllm_scenarios.py given to vLLM's parser and to agentroll's in each mode."""
    from .vllm_scenarios import SCENARIOS

    rows = []
    for suite in SUITES:
        mine = [s for s in SCENARIOS if s.suite == suite]
        strict = lenient = 0
        lost = []
        for s in mine:
            ref = reference(suite, s.text, s.tools)
            strict += recovered(ref, ours(suite, s.text, s.tools, "strict"), s.tools)
            got = ours(suite, s.text, s.tools, "lenient")
            if recovered(ref, got, s.tools):
                lenient += 1
            else:
                lost.append(f"{s.id} ({', '.join(explain(suite, s.text, ref, got))})")
        rows.append(Recovery(suite, len(mine), strict, lenient, tuple(lost)))
    return rows


def print_scenarios() -> None:
    """The recovery table in docs/toolcalls.md."""
    rows = recovery()
    print("| suite | cases | recovered, strict | recovered, lenient | not recovered in lenient (why) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.suite} | {r.cases} | {r.strict} | {r.lenient} | {'; '.join(r.lost) or '-'} |")
    n, strict, lenient = (sum(getattr(r, k) for r in rows) for k in ("cases", "strict", "lenient"))
    print(f"| all | {n} | {strict} ({strict / n:.0%}) | {lenient} ({lenient / n:.0%}) | |")


def main() -> None:
    """The table in docs/toolcalls.md: per suite, how 1,000 generated outputs compare with vLLM."""
    import collections

    from .generated import cases

    names = ["same", *DELIBERATE, "unexplained"]
    print("| suite | " + " | ".join(f"`{n}`" if n in DELIBERATE else n for n in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for suite in SUITES:
        counts: collections.Counter = collections.Counter()
        for case in cases(suite, 1000):
            counts.update(explain(suite, case.text, reference(suite, case.text), ours(suite, case.text)) or ("same",))
        print(f"| {suite} | " + " | ".join(str(counts[n]) for n in names) + " |")


if __name__ == "__main__":
    import sys

    print_scenarios() if "--scenarios" in sys.argv[1:] else main()
