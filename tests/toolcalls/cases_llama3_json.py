"""llama3_json: `{"name": .., "parameters": {..}}` calls, `;`-separated, optionally after `<|python_tag|>`.

No VOCAB: the Llama 3 vocabulary shipped offline (quicktok "llama3") predates 3.1's `<|python_tag|>`.
"""

import json

from agentroll.types import ParseStatus as S

from .casekit import SEARCH, TOOLS, TRICKY, Case, Expect

FORMAT = "llama3_json"


def call(name, args, key="parameters"):
    return json.dumps({"name": name, key: args}, ensure_ascii=False)


W = {"city": "Paris", "unit": "celsius"}
BAD_JSON = '{"name": "search", "parameters": {"query": "x",}}'
NO_NAME = '{"parameters": {"query": "x"}}'

CASES = [
    Case("plain_content", "The answer is 42.", "The answer is 42."),
    Case("one_call", call("get_weather", W), None, (Expect("get_weather", W),), TOOLS),
    Case(
        "arguments_key_is_accepted",
        call("search", {"query": "x"}, "arguments"),
        None,
        (Expect("search", {"query": "x"}),),
    ),
    Case(
        "several_calls",
        call("get_weather", W) + "; " + call("search", {"query": "rain"}),
        None,
        (Expect("get_weather", W), Expect("search", {"query": "rain"})),
        TOOLS,
    ),
    Case(
        "content_around_calls",
        "Checking now.<|python_tag|>" + call("get_weather", W) + "\nDone.",
        "Checking now.\nDone.",
        (Expect("get_weather", W),),
        TOOLS,
    ),
    Case(
        "python_tag_first", "<|python_tag|>" + call("search", {"query": "a"}), None, (Expect("search", {"query": "a"}),)
    ),
    Case("nested_escaped_unicode", call("search", TRICKY), None, (Expect("search", TRICKY),), (SEARCH,)),
    # no usable call: the text stays the content too (Llama 3's template renders it back as sampled)
    Case("truncated", call("get_weather", W)[:-5], call("get_weather", W)[:-5], (Expect(status=S.TRUNCATED),), TOOLS),
    Case(
        "trailing_separator_is_not_content",
        call("search", {"query": "a"}) + ";",
        None,
        (Expect("search", {"query": "a"}),),
    ),
    Case("invalid_json", BAD_JSON, BAD_JSON, (Expect(status=S.INVALID_JSON),)),
    Case("invalid_arguments", call("search", "x"), call("search", "x"), (Expect(status=S.INVALID_ARGUMENTS),)),
    Case("missing_name", NO_NAME, NO_NAME, (Expect(status=S.MISSING_NAME),)),
    Case("bare_json_object_is_content", '{"a": 1} is the answer.', '{"a": 1} is the answer.'),
    Case(
        "call_on_its_own_line_after_prose",
        "Let me check.\n" + call("get_weather", W),
        "Let me check.",
        (Expect("get_weather", W),),
        TOOLS,
    ),
    Case("unknown_tool", call("get_time", {}), None, (Expect("get_time", {}, S.UNKNOWN_TOOL),), TOOLS),
    Case(
        "schema_mismatch",  # days must be an integer >= 1; unit from the $defs enum
        call("get_weather", {"city": "Paris", "unit": "celsius", "days": 0}),
        None,
        (Expect("get_weather", {"city": "Paris", "unit": "celsius", "days": 0}, S.SCHEMA_MISMATCH),),
        TOOLS,
    ),
    Case("json_later_in_text_is_content", 'Use {"name": "x"} like this.', 'Use {"name": "x"} like this.'),
    Case(  # not the format, but vLLM takes it: a lenient parse repairs it, strict reports it (text stays content)
        "call_inside_a_line_of_prose",
        "Here: " + call("search", {"query": "a"}) + " Anything else?",
        "Here: " + call("search", {"query": "a"}) + " Anything else?",
        (Expect(status=S.INVALID_JSON),),
    ),
    Case(
        "braces_after_a_call_are_content",
        call("search", {"query": "a"}) + ' I used {search} with {"query": "a"}.',
        'I used {search} with {"query": "a"}.',
        (Expect("search", {"query": "a"}),),
    ),
]
