"""qwen3_coder: `<tool_call><function=NAME><parameter=k>v</parameter></function></tool_call>` (Qwen3.5 template);
`<tool_call>` is a special token in the Qwen2.5/3 vocabulary."""

from agentroll.types import ParseStatus as S

from .casekit import TOOLS, Case, Expect, IdsCase, Spelled, quicktok_vocab

FORMAT = "qwen3_coder"
VOCAB = lambda: quicktok_vocab("qwen3")  # noqa: E731


def call(name, **args):
    params = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in args.items())
    return f"<tool_call>\n<function={name}>\n{params}</function>\n</tool_call>"


W = {"city": "Paris", "unit": "celsius"}

CASES = [
    Case("plain_content", "The answer is 42.", "The answer is 42."),
    Case("one_call", call("get_weather", city="Paris", unit="celsius"), None, (Expect("get_weather", W),), TOOLS),
    Case(
        "several_calls",
        call("get_weather", city="Paris", unit="celsius") + "\n" + call("search", query="rain", limit=3),
        None,
        (Expect("get_weather", W), Expect("search", {"query": "rain", "limit": 3})),
        TOOLS,
    ),
    Case(
        "content_around_calls",
        "Let me check.\n\n" + call("get_weather", city="Paris", unit="celsius") + "\nThen more.",
        "Let me check.\n\n\nThen more.",
        (Expect("get_weather", W),),
        TOOLS,
    ),
    Case(
        "nested_escaped_unicode",  # multi-line code stays text; objects decode by the schema's type
        call("search", query='def f():\n    return "日本語 🙂" \\ {', filters='{"a": [1, {"b": null}]}'),
        None,
        (Expect("search", {"query": 'def f():\n    return "日本語 🙂" \\ {', "filters": {"a": [1, {"b": None}]}}),),
        TOOLS,
    ),
    Case(
        "values_follow_schema_types",
        call("search", query="42", limit="7"),
        None,
        (Expect("search", {"query": "42", "limit": 7}),),
        TOOLS,
    ),
    Case(
        "missing_parameter_closer",
        "<tool_call>\n<function=search>\n<parameter=query>\nrain\n<parameter=limit>\n2\n</function>\n</tool_call>",
        None,
        (Expect("search", {"query": "rain", "limit": 2}),),
        TOOLS,
    ),
    Case(
        "hermes_json_body",
        '<tool_call>\n{"name": "search", "arguments": {"query": "x"}}\n</tool_call>',
        None,
        (Expect("search", {"query": "x"}),),
    ),
    Case("truncated", call("get_weather", city="Paris")[:-30], None, (Expect(status=S.TRUNCATED),), TOOLS),
    Case(
        "invalid_json",
        '<tool_call>\n{"name": "search", "arguments": {"query": }}\n</tool_call>',
        None,
        (Expect(status=S.INVALID_JSON),),
    ),
    Case(
        "missing_name",
        "<tool_call>\n<parameter=q>\nx\n</parameter>\n</tool_call>",
        None,
        (Expect(status=S.MISSING_NAME),),
    ),
    Case("unknown_tool", call("get_time"), None, (Expect("get_time", {}, S.UNKNOWN_TOOL),), TOOLS),
    Case(
        "schema_mismatch",
        call("get_weather", city="Paris", days="0"),
        None,
        (Expect("get_weather", {"city": "Paris", "days": 0}, S.SCHEMA_MISMATCH),),
        TOOLS,
    ),
]

IDS_CASES = [
    IdsCase(
        "literal_marker_is_content",
        ("Wrap calls in ", Spelled("<tool_call>"), "<function=x>", Spelled("</tool_call>"), "."),
        "Wrap calls in <tool_call><function=x></tool_call>.",
    ),
]
