"""deepseek_v3: DeepSeek V3/R1 tool calls (R1 template form) and the V3.1 form; real DeepSeek vocabulary."""

import json

from agentroll.types import ParseStatus as S

from .casekit import SEARCH, TOOLS, TRICKY, Case, Expect, IdsCase, Spelled, deepseek_vocab

FORMAT = "deepseek_v3"
VOCAB = deepseek_vocab

BEGIN, END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"


def call(name, args, raw=None):
    """One call exactly as the R1 template renders it."""
    body = raw if raw is not None else json.dumps(args, ensure_ascii=False)
    return f"{CALL}function{SEP}{name}\n```json\n{body}\n```{CALL_END}"


def section(*calls):
    return BEGIN + "\n".join(calls) + END


W = {"city": "Paris", "unit": "celsius"}

CASES = [
    Case("plain_content", "The answer is 42.", "The answer is 42."),
    Case("one_call", section(call("get_weather", W)), None, (Expect("get_weather", W),), TOOLS),
    Case(
        "several_calls",
        section(call("get_weather", W), call("search", {"query": "rain"})),
        None,
        (Expect("get_weather", W), Expect("search", {"query": "rain"})),
        TOOLS,
    ),
    Case(
        "content_around_calls",
        "Let me look.\n" + section(call("get_weather", W)) + " Done.",
        "Let me look.\n Done.",
        (Expect("get_weather", W),),
        TOOLS,
    ),
    Case(
        "v31_form_without_fence",
        f'{BEGIN}{CALL}search{SEP}{{"query": "x"}}{CALL_END}{END}',
        None,
        (Expect("search", {"query": "x"}),),
    ),
    Case("nested_escaped_unicode", section(call("search", TRICKY)), None, (Expect("search", TRICKY),), (SEARCH,)),
    Case("truncated", "Hm.\n" + section(call("get_weather", W))[:-30], "Hm.", (Expect(status=S.TRUNCATED),), TOOLS),
    Case("truncated_right_after_section_begin", BEGIN, None, (Expect(status=S.TRUNCATED),)),
    Case("invalid_json", section(call("search", None, '{"query": x}')), None, (Expect(status=S.INVALID_JSON),)),
    Case("invalid_arguments", section(call("search", [1])), None, (Expect(status=S.INVALID_ARGUMENTS),)),
    Case("missing_name", section(call("", {"query": "x"})), None, (Expect(status=S.MISSING_NAME),)),
    Case("unknown_tool", section(call("get_time", {})), None, (Expect("get_time", {}, S.UNKNOWN_TOOL),), TOOLS),
    Case(
        "schema_mismatch",
        section(call("get_weather", {"city": 7})),
        None,
        (Expect("get_weather", {"city": 7}, S.SCHEMA_MISMATCH),),
        TOOLS,
    ),
]

IDS_CASES = [
    IdsCase(
        "literal_marker_is_content",
        ("The format starts with ", Spelled(BEGIN + CALL), "function", Spelled(SEP), "name."),
        f"The format starts with {BEGIN}{CALL}function{SEP}name.",
    ),
    IdsCase(
        "literal_call_end_inside_arguments",
        (
            BEGIN + CALL + "function" + SEP + 'search\n```json\n{"query": "',
            Spelled(CALL_END),
            '"}\n```' + CALL_END + END,
        ),
        None,
        (Expect("search", {"query": CALL_END}),),
        TOOLS,
    ),
]
