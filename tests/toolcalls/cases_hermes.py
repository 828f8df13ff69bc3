"""hermes: `<tool_call>{json}</tool_call>`; markers are special tokens in the Qwen2.5/3 vocabulary."""

import json

from agentroll.types import ParseStatus as S

from .casekit import SEARCH, TOOLS, TRICKY, Case, Expect, IdsCase, Spelled, quicktok_vocab

FORMAT = "hermes"
VOCAB = lambda: quicktok_vocab("qwen3")  # noqa: E731


def call(name, args, raw=None):
    body = raw if raw is not None else json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


W = {"city": "Paris", "unit": "celsius"}

CASES = [
    Case("plain_content", "The answer is 42.", "The answer is 42."),
    Case("whitespace_only_is_no_content", " \n ", None),
    Case("one_call", call("get_weather", W), None, (Expect("get_weather", W),), TOOLS),
    Case(
        "several_calls",
        call("get_weather", W) + "\n" + call("search", {"query": "rain"}),
        None,
        (Expect("get_weather", W), Expect("search", {"query": "rain"})),
        TOOLS,
    ),
    Case(
        "content_around_calls",
        "Let me check.\n\n" + call("get_weather", W) + "\nOne moment.",
        "Let me check.\n\n\nOne moment.",
        (Expect("get_weather", W),),
        TOOLS,
    ),
    Case("nested_escaped_unicode", call("search", TRICKY), None, (Expect("search", TRICKY),), (SEARCH,)),
    Case(
        "arguments_before_name",
        call("", None, '{"arguments": {"query": "x"}, "name": "search"}'),
        None,
        (Expect("search", {"query": "x"}),),
    ),
    Case("truncated", "Sure. " + call("get_weather", W)[:-20], "Sure.", (Expect(status=S.TRUNCATED),), TOOLS),
    Case(
        "truncated_after_a_good_call",
        call("search", {"query": "a"}) + "<tool_call>",
        None,
        (Expect("search", {"query": "a"}), Expect(status=S.TRUNCATED)),
    ),
    Case(
        "invalid_json",
        call("", None, '{"name": "search", "arguments": {"query": "x",}}'),
        None,
        (Expect(status=S.INVALID_JSON),),
    ),
    Case("invalid_arguments", call("search", ["x"]), None, (Expect(status=S.INVALID_ARGUMENTS),)),
    Case("bare_string_arguments", call("search", "rain"), None, (Expect(status=S.INVALID_ARGUMENTS),), TOOLS),
    Case("missing_name", call("", None, '{"arguments": {"query": "x"}}'), None, (Expect(status=S.MISSING_NAME),)),
    Case("unknown_tool", call("get_time", {}), None, (Expect("get_time", {}, S.UNKNOWN_TOOL),), TOOLS),
    Case(
        "schema_mismatch",  # unit must be one of the $defs enum
        call("get_weather", {"city": "Paris", "unit": "kelvin"}),
        None,
        (Expect("get_weather", {"city": "Paris", "unit": "kelvin"}, S.SCHEMA_MISMATCH),),
        TOOLS,
    ),
    Case("stray_closer_is_content", "a </tool_call> b", "a </tool_call> b"),
]

IDS_CASES = [
    IdsCase(
        "literal_marker_is_content",
        ("I would write ", Spelled("<tool_call>"), ' {"name": "x"} ', Spelled("</tool_call>"), " here."),
        'I would write <tool_call> {"name": "x"} </tool_call> here.',
    ),
    IdsCase(
        "literal_closer_inside_arguments",
        ('<tool_call>{"name": "search", "arguments": {"query": "', Spelled("</tool_call>"), '"}}</tool_call>'),
        None,
        (Expect("search", {"query": "</tool_call>"}),),
        TOOLS,
    ),
]
