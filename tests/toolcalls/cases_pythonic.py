"""pythonic: `[f(a=1), g(b="x")]` opening the turn, read with `ast` (never evaluated)."""

from agentroll.types import ParseStatus as S

from .casekit import TOOLS, Case, Expect

FORMAT = "pythonic"

W = {"city": "Paris", "unit": "celsius"}
TRICKY = {"query": 'say "hi" \\ ]) 日本語 🙂', "filters": {"n": [1.5, True, None], "deep": {"a": [{"b": "c"}]}}}

CASES = [
    Case("plain_content", "The answer is 42.", "The answer is 42."),
    Case("one_call", '[get_weather(city="Paris", unit="celsius")]', None, (Expect("get_weather", W),), TOOLS),
    Case(
        "several_calls",
        "[get_weather(city='Paris', unit='celsius'), search(query=\"rain\", limit=3)]",
        None,
        (Expect("get_weather", W), Expect("search", {"query": "rain", "limit": 3})),
        TOOLS,
    ),
    Case(
        "content_around_calls",  # a list opens the turn; text after it is content
        '<|python_start|>[search(query="a")]<|python_end|> Searching now.',
        "Searching now.",
        (Expect("search", {"query": "a"}),),
        TOOLS,
        covers=frozenset({"llama4_tags"}),
    ),
    Case("text_before_a_list_is_content", 'Sure: [search(query="a")]', 'Sure: [search(query="a")]'),
    Case(
        "nested_escaped_unicode",
        "[search(query='say \"hi\" \\\\ ]) 日本語 🙂', filters={'n': [1.5, True, None], 'deep': {'a': [{'b': 'c'}]}})]",
        None,
        (Expect("search", TRICKY),),
        TOOLS,
    ),
    Case(
        "json_literals",
        "[search(query='x', filters={'ok': true, 'v': null})]",
        None,
        (Expect("search", {"query": "x", "filters": {"ok": True, "v": None}}),),
    ),
    Case("set_literal_has_no_json_value", "[search(query={'a', 'b'})]", None, (Expect(status=S.INVALID_ARGUMENTS),)),
    Case("dotted_name", "[math.sqrt(x=4)]", None, (Expect("math.sqrt", {"x": 4}),)),
    Case("truncated", '[get_weather(city="Par', None, (Expect(status=S.TRUNCATED),), TOOLS),
    Case("invalid_json", "[get_weather(city='Paris',,)]", None, (Expect(status=S.INVALID_JSON),)),
    Case("positional_arguments", "[get_weather('Paris')]", None, (Expect(status=S.INVALID_ARGUMENTS),)),
    Case("code_is_never_run", "[search(query=__import__('os').getcwd())]", None, (Expect(status=S.INVALID_ARGUMENTS),)),
    Case(
        "missing_name",
        "[search(query='a'), 42]",
        None,
        (Expect("search", {"query": "a"}), Expect(status=S.MISSING_NAME)),
    ),
    Case(
        "an_unparsable_call_keeps_its_good_siblings",  # a broken quote: each call is read on its own
        "[search(query='a'), search(query='it's'), get_time()]",
        None,
        (Expect("search", {"query": "a"}), Expect(status=S.INVALID_JSON), Expect("get_time", {})),
    ),
    Case("unknown_tool", "[get_time()]", None, (Expect("get_time", {}, S.UNKNOWN_TOOL),), TOOLS),
    Case(
        "schema_mismatch",
        "[get_weather(city='Paris', unit='kelvin')]",
        None,
        (Expect("get_weather", {"city": "Paris", "unit": "kelvin"}, S.SCHEMA_MISMATCH),),
        TOOLS,
    ),
]
