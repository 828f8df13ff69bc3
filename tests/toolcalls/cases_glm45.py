"""glm45: `<tool_call>NAME<arg_key>k</arg_key><arg_value>v</arg_value></tool_call>` (GLM-5.1 template form).

No VOCAB: GLM's tokenizer is not available offline; token-level parsing is covered by the other formats.
"""

from agentroll.types import ParseStatus as S

from .casekit import TOOLS, Case, Expect

FORMAT = "glm45"


def call(name, **args):
    pairs = "".join(f"<arg_key>{k}</arg_key><arg_value>{v}</arg_value>" for k, v in args.items())
    return f"<tool_call>{name}{pairs}</tool_call>"


W = {"city": "Paris", "unit": "celsius"}

CASES = [
    Case("plain_content", "The answer is 42.", "The answer is 42."),
    Case("one_call", call("get_weather", city="Paris", unit="celsius"), None, (Expect("get_weather", W),), TOOLS),
    Case(
        "several_calls",
        call("get_weather", city="Paris", unit="celsius") + call("search", query="rain", limit="3"),
        None,
        (Expect("get_weather", W), Expect("search", {"query": "rain", "limit": 3})),
        TOOLS,
    ),
    Case(
        "content_around_calls",
        "Checking.\n" + call("get_weather", city="Paris", unit="celsius") + "\nWait.",
        "Checking.\n\nWait.",
        (Expect("get_weather", W),),
        TOOLS,
    ),
    Case(
        "glm45_newline_layout",
        "<tool_call>search\n<arg_key>query</arg_key>\n<arg_value>rain</arg_value>\n</tool_call>",
        None,
        (Expect("search", {"query": "rain"}),),
    ),
    Case(
        "nested_escaped_unicode",  # values are JSON when they parse, else text
        call("search", query='say "hi" 日本語 🙂 {', filters='{"a": [1, {"b": null}], "e": "\\u00e9"}'),
        None,
        (Expect("search", {"query": 'say "hi" 日本語 🙂 {', "filters": {"a": [1, {"b": None}], "e": "é"}}),),
    ),
    Case(
        "string_parameter_stays_text",  # the schema says string: "123" is not turned into a number
        call("search", query="123", limit="5"),
        None,
        (Expect("search", {"query": "123", "limit": 5}),),
        TOOLS,
    ),
    Case("truncated", call("get_weather", city="Paris")[:-20], None, (Expect(status=S.TRUNCATED),), TOOLS),
    Case(
        # GLM arguments are not one JSON text (a value that is not JSON is a string), so the
        # "invalid_json" slot is its malformed-envelope case: a key without its value.
        "key_without_value",
        "<tool_call>search<arg_key>query</arg_key></tool_call>",
        None,
        (Expect(status=S.INVALID_ARGUMENTS),),
        covers=frozenset({"invalid_json", "invalid_arguments"}),
    ),
    Case(
        "missing_name",
        "<tool_call><arg_key>q</arg_key><arg_value>x</arg_value></tool_call>",
        None,
        (Expect(status=S.MISSING_NAME),),
    ),
    Case("unknown_tool", call("get_time"), None, (Expect("get_time", {}, S.UNKNOWN_TOOL),), TOOLS),
    Case(
        "schema_mismatch",
        call("get_weather", city="Paris", unit="kelvin"),
        None,
        (Expect("get_weather", {"city": "Paris", "unit": "kelvin"}, S.SCHEMA_MISMATCH),),
        TOOLS,
    ),
]
