"""openai: gpt-oss harmony turns (analysis -> reasoning, final -> content, recipients -> calls); markers
are special tokens in gpt-oss's o200k_harmony vocabulary."""

import json

from agentroll.types import ParseStatus as S

from .casekit import SEARCH, TOOLS, TRICKY, Case, Expect, IdsCase, Spelled, quicktok_vocab

FORMAT = "openai"
VOCAB = lambda: quicktok_vocab("o200k_harmony")  # noqa: E731


def final(text, end="<|return|>"):
    return f"<|channel|>final<|message|>{text}{end}"


def analysis(text):
    return f"<|channel|>analysis<|message|>{text}<|end|>"


def call(name, args, raw=None, *, recipient_first=False, end="<|call|>"):
    body = raw if raw is not None else json.dumps(args, ensure_ascii=False)
    if recipient_first:  # how openai-harmony renders history
        return f" to=functions.{name}<|channel|>commentary <|constrain|>json<|message|>{body}{end}"
    return f"<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>{body}{end}"  # how gpt-oss samples


def then(message):
    """A later message of the same turn."""
    return "<|start|>assistant" + message


W = {"city": "Paris", "unit": "celsius"}
Q = {"query": "rain"}

CASES = [
    Case("plain_content", final("The answer is 42."), "The answer is 42."),
    Case("final_without_its_stop_token", final("The answer", end=""), "The answer"),
    Case("reasoning_then_content", analysis("Think: 6*7.") + then(final("42")), "42", reasoning="Think: 6*7."),
    Case("one_call", call("get_weather", W), None, (Expect("get_weather", W),), TOOLS),
    Case(
        "one_call_recipient_before_channel",
        analysis("Need the weather.") + then(call("get_weather", W, recipient_first=True)),
        None,
        (Expect("get_weather", W),),
        TOOLS,
        reasoning="Need the weather.",
    ),
    Case(
        "several_calls",
        call("get_weather", W) + then(call("search", Q)),
        None,
        (Expect("get_weather", W), Expect("search", Q)),
        TOOLS,
    ),
    Case(
        "content_around_calls",  # a commentary preamble, then the call
        "<|channel|>commentary<|message|>Let me check.<|end|>" + then(call("get_weather", W)),
        "Let me check.",
        (Expect("get_weather", W),),
        TOOLS,
    ),
    Case("nested_escaped_unicode", call("search", TRICKY), None, (Expect("search", TRICKY),), (SEARCH,)),
    Case(
        "truncated",
        analysis("Checking.") + then(call("get_weather", W, end="")[:-5]),
        None,
        (Expect(status=S.TRUNCATED),),
        TOOLS,
        reasoning="Checking.",
    ),
    Case(
        "header_cut_off_is_nothing_yet", analysis("Hmm.") + "<|start|>assistant<|channel|>fin", None, reasoning="Hmm."
    ),
    Case("invalid_json", call("search", None, raw='{"query": "x",}'), None, (Expect(status=S.INVALID_JSON),)),
    Case("invalid_arguments", call("search", ["x"]), None, (Expect(status=S.INVALID_ARGUMENTS),)),
    Case(
        "missing_name",
        "<|channel|>commentary to=functions. <|constrain|>json<|message|>{}<|call|>",
        None,
        (Expect(status=S.MISSING_NAME),),
    ),
    Case("unknown_tool", call("get_time", {}), None, (Expect("get_time", {}, S.UNKNOWN_TOOL),), TOOLS),
    Case(
        "schema_mismatch",  # unit must be one of the $defs enum
        call("get_weather", {"city": "Paris", "unit": "kelvin"}),
        None,
        (Expect("get_weather", {"city": "Paris", "unit": "kelvin"}, S.SCHEMA_MISMATCH),),
        TOOLS,
    ),
]

IDS_CASES = [
    IdsCase(
        "literal_marker_is_content",
        ("<|channel|>final<|message|>I would write ", Spelled("<|call|>"), " here.<|return|>"),
        "I would write <|call|> here.",
    ),
    IdsCase(
        "literal_end_inside_arguments",
        ('<|channel|>commentary to=functions.search<|message|>{"query": "', Spelled("<|end|>"), '"}<|call|>'),
        None,
        (Expect("search", {"query": "<|end|>"}),),
        TOOLS,
    ),
]
