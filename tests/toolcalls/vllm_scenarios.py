"""Model outputs modelled on what vLLM's own tool-parser tests cover, one table per suite.

vLLM tests each parser on a set of scenarios (tests/tool_parsers/test_<format>_tool_parser.py and the shared
common_tests.py in vllm-project/vllm): plain text, one call, parallel calls, every JSON type, no arguments,
text around the calls, escapes, and the malformed outputs each parser was fixed for (an unclosed call, a bad
sibling, a string for arguments, junk after the marker, a skipped special token). The strings here are written
anew for agentroll, one per scenario, with other names and values; `test_vllm_parity.py` gives each to vLLM's
parser running in this venv and to agentroll's, strict and lenient, and measures how many calls agentroll
recovers (`python -m tests.toolcalls.vllm_reference --scenarios`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from agentroll.types import ToolSpec


@dataclass(frozen=True)
class Scenario:
    suite: str  # a vllm_reference.SUITES key
    id: str
    text: str
    tools: tuple[ToolSpec, ...] = ()


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


# A tool with one string parameter: what a bare string for arguments can only mean.
NOTE = ToolSpec(
    name="save_note",
    description="Save a note.",
    input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
)
TYPES = {
    "label": "x-ray",
    "count": 7,
    "ratio": 0.25,
    "enabled": False,
    "missing": None,
    "tags": ["a", "b"],
    "meta": {"k": "v"},
    "none_list": [],
    "none_map": {},
}
ESCAPES = {"quote": 'she said "ok"', "path": "D:\\data\\in.csv", "lines": "one\ntwo", "brace": "re.sub(r'{}', x)"}


def hermes() -> list[Scenario]:
    def tc(body: str, nl: str = "\n") -> str:
        return f"<tool_call>{nl}{body}{nl}</tool_call>"

    def call(name: str, args) -> str:
        return _dumps({"name": name, "arguments": args})

    s = "hermes"
    return [
        Scenario(s, "plain_text", "Nothing to call here, just an answer."),
        Scenario(s, "one_call", tc(call("finish", {"done": True}))),
        Scenario(s, "one_call_no_newlines", tc(call("lookup_rate", {"from": "EUR", "to": "JPY"}), "")),
        Scenario(
            s, "multiline_json", '<tool_call>\n{"name": "lookup_rate",\n"arguments": {"from":\n"EUR"}}\n</tool_call>'
        ),
        Scenario(s, "text_before_call", "One moment, converting." + tc(call("lookup_rate", {"from": "USD"}), "")),
        Scenario(s, "two_calls", tc(call("find", {"q": "owls"}), "") + tc(call("find", {"q": "bats"}), "")),
        Scenario(s, "every_json_type", tc(call("store", TYPES))),
        Scenario(s, "no_arguments", tc(call("now", {}))),
        Scenario(s, "escapes", tc(call("write", ESCAPES))),
        Scenario(s, "ends_before_close", "<tool_call>\n" + call("finish", {"done": False})),
        Scenario(s, "ends_inside_json", '<tool_call>\n{"name": "finish", "arguments": {"done": false}'),
        Scenario(s, "arguments_json_string", tc(_dumps({"name": "get_setting", "arguments": _dumps({"key": "pool"})}))),
        Scenario(s, "arguments_bare_string", tc(_dumps({"name": "save_note", "arguments": "buy milk"})), (NOTE,)),
        Scenario(s, "arguments_bare_string_no_tools", tc(_dumps({"name": "save_note", "arguments": "buy milk"}))),
        Scenario(
            s,
            "arguments_string_that_looks_like_json",
            tc(_dumps({"name": "save_note", "arguments": "{draft}"})),
            (NOTE,),
        ),
        Scenario(s, "text_and_call_in_one_chunk", "Hey!" + tc(call("ping", {"n": 2}), "")),
        Scenario(s, "bad_sibling", tc(call("find", {"q": "owls"})) + tc('{"name": "find", "arguments": {q: 1}}')),
    ]


def llama3_json() -> list[Scenario]:
    def call(name: str, args, key: str = "parameters") -> str:
        return _dumps({"name": name, key: args})

    s = "llama3_json"
    one, two, three = call("find_ticket", {"id": 12}), call("list_queues", {}), call("find_ticket", {"id": 40})
    return [
        Scenario(s, "plain_text", "Nothing here looks like a call."),
        Scenario(s, "call_inside_prose", f"Here is what I found: {call('list_queues', {})} Anything else?"),
        Scenario(s, "one_call", call("find_ticket", {"id": 12, "verbose": True})),
        Scenario(s, "invalid_json", '{"name": "find_ticket", "parameters": {id: twelve}'),
        Scenario(s, "arguments_key", call("find_ticket", {"id": 3}, "arguments")),
        Scenario(s, "three_calls", f"{one}; {two}; {three}"),
        Scenario(s, "three_calls_spaced", f"{one} ; {two} ; {three}"),
        Scenario(s, "three_calls_inside_prose", f"Results follow: {one}; {two}; {three} Shall I go on?"),
        Scenario(s, "deep_nesting", call("configure", {"a": {"b": {"c": {"d": {"leaf": "x"}}}}})),
        Scenario(s, "two_calls_deep_nesting", f"{one}; " + call("configure", {"db": {"pool": {"size": {"max": 9}}}})),
        Scenario(s, "brackets_in_strings", call("find_ticket", {"q": "a {b} [c]", "sub": {"k": "d {e}"}})),
        Scenario(s, "escaped_quotes", call("find_ticket", {"q": 'he wrote "hi {there}"'})),
        Scenario(s, "no_name", '{"parameters": {"id": 1}}'),
        Scenario(s, "no_arguments_key", '{"name": "list_queues"}'),
        Scenario(s, "brace_in_trailing_text", f"{one} I called {{find_ticket}} for that."),
        Scenario(s, "json_in_trailing_text", f'{one} The argument was {{"id": 12}}'),
        *[Scenario(s, f"separator_{i}", one + sep + two) for i, sep in enumerate(["; ", ";", ";\n", "\n"])],
    ]


def pythonic() -> list[Scenario]:
    s = "pythonic"
    simple = "get_forecast(town='Lyon', scale='kelvin')"
    types = "add_member(name='Ana Ruiz', age=41, home={'town': 'Lyon', 'zip': '69001'}, team=None, active=True, nicks=['Ana', 'A'])"  # noqa: E501
    return [
        Scenario(s, "plain_text", "How may I help?"),
        Scenario(s, "one_call", f"[{simple}]"),
        Scenario(s, "every_type", f"[{types}]"),
        Scenario(s, "no_arguments", "[get_forecast()]"),
        Scenario(s, "empty_dict", "[set_flags(extra={})]"),
        Scenario(s, "empty_list", "[set_flags(items=[])]"),
        Scenario(s, "escaped_strings", r"""[get_forecast(town='Martha\'s Bay', scale='\"raw\"')]"""),
        Scenario(s, "two_calls", f"[{simple}, {types}]"),
        Scenario(s, "bytes_sibling", f"[broken(x=b'q'), {simple}]"),
        Scenario(s, "infinite_sibling", f"[calc(x=1e999), {simple}]"),
        Scenario(s, "unparsable_sibling", f"[{simple}, f(a='x 'y', b='z')]"),
        Scenario(s, "no_sibling_parses", "[f(a='x 'y' 'z), g(b='p 'q' 'r)]"),
        Scenario(s, "mismatched_brackets", "[probe(x=1])]"),
    ]


def mistral() -> list[Scenario]:
    def tc(*calls, space: str = "") -> str:
        return "[TOOL_CALLS]" + space + _dumps(list(calls))

    s = "mistral"
    add = {"name": "sum", "arguments": {"a": 1.5, "b": 2}}
    wx = {"name": "forecast", "arguments": {"town": "Oslo", "country": "NO", "scale": "celsius"}}
    return [
        Scenario(s, "plain_text", "Just words."),
        Scenario(s, "one_call", tc(add)),
        Scenario(s, "space_after_marker", tc(wx, space=" ")),
        Scenario(s, "arguments_before_name", tc({"arguments": wx["arguments"], "name": "forecast"}, space=" ")),
        Scenario(s, "name_inside_arguments", tc({"arguments": {"name": "Bo"}, "name": "age_of"}, space=" ")),
        Scenario(s, "two_calls", tc(add, wx, space=" ")),
        Scenario(s, "text_before_calls", "Sure" + tc(add, space=" ")),
        Scenario(s, "text_after_list", tc(wx, space=" ") + "\nand some more words"),
        Scenario(s, "spaced_json", '[TOOL_CALLS]  [ {"name":"sum" , "arguments" : {"a": 1, "b": 2} } ]'),
        Scenario(s, "string_values", tc({"name": "sum", "arguments": {"a": "1", "b": "2"}}, space=" ")),
        Scenario(s, "two_markers", tc(add, space=" ") + tc({"name": "diff", "arguments": {"c": 3}}, space=" ")),
        Scenario(s, "junk_before_list", '[TOOL_CALLS]  noise [{"name": "sum", "arguments": {"a": 4, "b": 5}}] tail'),
        Scenario(s, "no_json_after_marker", "[TOOL_CALLS] nothing useful here"),
    ]


def mistral_v11() -> list[Scenario]:
    """v11+ calls, as decoded text gives them: with `[ARGS]`, and without it where the decoder skipped it."""
    s = "mistral_v11"
    cmd = _dumps({"cmd": "echo \"hi there\"\nre.match(r'{}', s)"})
    out = []
    for marker, tag in (("[ARGS]", ""), ("", "_args_skipped")):
        out += [
            Scenario(s, "one_call" + tag, f'[TOOL_CALLS]add_up{marker}{{"a": 1.5, "b": 4}}'),
            Scenario(s, "weather" + tag, f'[TOOL_CALLS]forecast{marker}{{"town": "Oslo", "scale": "celsius"}}'),
            Scenario(s, "two_calls" + tag, f'[TOOL_CALLS]add_up{marker}{{"a": 1}}[TOOL_CALLS]times{marker}{{"b": 2}}'),
            Scenario(s, "text_before" + tag, f'ok[TOOL_CALLS]add_up{marker}{{"a": 1.5}}'),
            Scenario(s, "braces_and_escapes" + tag, f"x{{y[TOOL_CALLS]shell{marker}{cmd}"),
            Scenario(s, "ends_inside_json" + tag, f"x{{y[TOOL_CALLS]shell{marker}{cmd[:-2]}"),
        ]
    return [
        Scenario(s, "plain_text", "Words only."),
        *out,
        Scenario(s, "name_then_end", "[TOOL_CALLS]no_args_tool"),
    ]


DS = {k: f"<｜{k}｜>" for k in ("tool▁calls▁begin", "tool▁calls▁end", "tool▁call▁begin", "tool▁call▁end", "tool▁sep")}


def deepseek_v3() -> list[Scenario]:
    def call(name: str, body: str) -> str:
        return f"{DS['tool▁call▁begin']}function{DS['tool▁sep']}{name}\n```json\n{body}\n```{DS['tool▁call▁end']}"

    def section(*calls: str) -> str:
        return DS["tool▁calls▁begin"] + "".join(calls) + DS["tool▁calls▁end"]

    s = "deepseek_v3"
    wx = _dumps({"town": "Kyoto", "scale": "celsius"})
    return [
        Scenario(s, "plain_text", "Hello! I can look up the forecast."),
        Scenario(s, "one_call", section(call("forecast", wx))),
        Scenario(s, "two_calls", section(call("forecast", wx), call("book_room", '{"town": "Kyoto", "night": 2}'))),
        Scenario(s, "every_json_type", section(call("store", _dumps(TYPES)))),
        Scenario(s, "no_arguments", section(call("now", "{}"))),
        Scenario(s, "text_before", "Checking the forecast." + section(call("forecast", '{"town": "Nara"}'))),
        Scenario(s, "escapes", section(call("write", _dumps(ESCAPES)))),
        Scenario(s, "unterminated_json", section(call("forecast", '{"town": "Kyoto"'))),
        Scenario(
            s,
            "no_call_begin",
            f"{DS['tool▁calls▁begin']}function{DS['tool▁sep']}forecast\n```json\n{wx}\n```{DS['tool▁calls▁end']}",
        ),
    ]


KIMI_BEGIN, KIMI_END = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"


def kimi_k2() -> list[Scenario]:
    def call(call_id: str, body: str) -> str:
        return f"<|tool_call_begin|>{call_id} <|tool_call_argument_begin|>{body}<|tool_call_end|>"

    def section(*calls: str) -> str:
        return KIMI_BEGIN + "".join(calls) + KIMI_END

    s = "kimi_k2"
    return [
        Scenario(s, "plain_text", "A plain answer."),
        Scenario(s, "one_call", "Looking. " + section(call("functions.forecast:0", '{"town": "Hanoi"}'))),
        Scenario(
            s,
            "two_calls",
            "Comparing. "
            + section(
                call("functions.forecast:0", '{"town": "Hanoi"}'), call("functions.forecast:1", '{"town": "Hue"}')
            ),
        ),
        Scenario(
            s,
            "three_calls",
            "Several things. "
            + section(
                call("functions.forecast:0", '{"town": "Hue"}'),
                call("functions.headlines:1", '{"topic": "rail"}'),
                call("functions.mail:2", '{"to": "a@b.example", "subject": "Hi"}'),
            ),
        ),
        Scenario(s, "angle_brackets", "HTML. " + section(call("functions.render:0", '{"html": "<p>x</p>"}'))),
        Scenario(s, "multiline_json", "Pretty. " + section(call("functions.store:0", '{\n  "k": "v",\n  "n": 5\n}'))),
        Scenario(s, "no_functions_prefix", "Bare. " + section(call("forecast:0", '{"town": "Hue"}'))),
        Scenario(s, "no_arguments", "Nothing. " + section(call("functions.tick:0", "{}"))),
        Scenario(
            s,
            "bad_json_beside_good",
            "Two. "
            + section(call("functions.broken:0", '{"town": "Hue"'), call("functions.fine:1", '{"town": "Vinh"}')),
        ),
        Scenario(
            s,
            "malformed_id_beside_good",
            "Two. " + section(call("functions.odd.0", '{"town": "Hue"}'), call("functions.fine:1", '{"town": "Vinh"}')),
        ),
        Scenario(s, "bare_counter_id", "Counter. " + section(call("0", '{"town": "Hue"}'))),
    ]


SCENARIOS: list[Scenario] = [
    *hermes(),
    *llama3_json(),
    *pythonic(),
    *mistral(),
    *mistral_v11(),
    *deepseek_v3(),
    *kimi_k2(),
]
