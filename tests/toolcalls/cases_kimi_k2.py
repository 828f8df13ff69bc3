"""kimi_k2: `functions.NAME:IDX` ids, arguments after `<|tool_call_argument_begin|>` (Kimi-K2 template form).

No VOCAB: Kimi's tokenizer is not available offline; token-level parsing is covered by the other formats.
"""

import json

from agentroll.types import ParseStatus as S

from .casekit import SEARCH, TOOLS, TRICKY, Case, Expect

FORMAT = "kimi_k2"

BEGIN, END = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
CALL, ARGS, CALL_END = "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>"


def call(name, index, args, raw=None):
    body = raw if raw is not None else json.dumps(args, ensure_ascii=False)
    return f"{CALL}functions.{name}:{index}{ARGS}{body}{CALL_END}"


def section(*calls):
    return BEGIN + "".join(calls) + END


W = {"city": "Paris", "unit": "celsius"}

CASES = [
    Case("plain_content", "The answer is 42.", "The answer is 42."),
    Case("one_call", section(call("get_weather", 0, W)), None, (Expect("get_weather", W),), TOOLS),
    Case(
        "several_calls",
        section(call("get_weather", 0, W), "\n", call("search", 1, {"query": "rain"})),
        None,
        (Expect("get_weather", W), Expect("search", {"query": "rain"})),
        TOOLS,
    ),
    Case(
        "content_around_calls",
        "I'll check. " + section(call("get_weather", 0, W)) + " ok",
        "I'll check.  ok",
        (Expect("get_weather", W),),
        TOOLS,
    ),
    Case("nested_escaped_unicode", section(call("search", 0, TRICKY)), None, (Expect("search", TRICKY),), (SEARCH,)),
    Case("dotted_tool_name", section(call("fs.read", 3, {"path": "a"})), None, (Expect("fs.read", {"path": "a"}),)),
    Case("truncated", section(call("get_weather", 0, W))[:-40], None, (Expect(status=S.TRUNCATED),), TOOLS),
    Case("invalid_json", section(call("search", 0, None, "{'query': 'x'}")), None, (Expect(status=S.INVALID_JSON),)),
    Case(
        "missing_arguments", section(f"{CALL}functions.search:0{CALL_END}"), None, (Expect(status=S.INVALID_ARGUMENTS),)
    ),
    Case("missing_name", section(f"{CALL}{ARGS}{{}}{CALL_END}"), None, (Expect(status=S.MISSING_NAME),)),
    Case(
        "id_without_index_names_nothing",  # vLLM skips it too; its valid sibling stays
        section(f"{CALL}functions.search.0{ARGS}{{}}{CALL_END}", call("search", 1, {"query": "x"})),
        None,
        (Expect(status=S.MISSING_NAME), Expect("search", {"query": "x"})),
    ),
    Case("unknown_tool", section(call("get_time", 0, {})), None, (Expect("get_time", {}, S.UNKNOWN_TOOL),), TOOLS),
    Case(
        "schema_mismatch",
        section(call("get_weather", 0, {"town": "Paris"})),
        None,
        (Expect("get_weather", {"town": "Paris"}, S.SCHEMA_MISMATCH),),
        TOOLS,
    ),
]
