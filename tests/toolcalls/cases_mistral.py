"""mistral: v3-v7 `[TOOL_CALLS][{...}, ...]` and v11+ `[TOOL_CALLS]NAME[ARGS]{...}`; markers are special
tokens in the real Tekken vocabulary mistral-common ships (Mistral-Nemo's)."""

import json
from functools import cache

from agentroll.types import ParseStatus as S

from .casekit import SEARCH, TOOLS, TRICKY, Case, Expect, IdsCase, Spelled, Vocab

FORMAT = "mistral"


@cache
def _tekken() -> Vocab:
    from agentroll.renderers.mistral import load_tokenizer

    tok = load_tokenizer("v3-tekken")
    return Vocab("tekken", tok.encode, tok.decode, tok.text)


VOCAB = _tekken


def v3(*calls, raw=None):
    return "[TOOL_CALLS]" + (raw if raw is not None else json.dumps(list(calls), ensure_ascii=False))


def c(name, args, call_id=None):
    out = {"name": name, "arguments": args}
    if call_id:
        out["id"] = call_id
    return out


def v11(name, args, call_id=None):
    cid = f"[CALL_ID]{call_id}" if call_id else ""
    return f"[TOOL_CALLS]{name}{cid}[ARGS]{json.dumps(args, ensure_ascii=False)}"


W = {"city": "Paris", "unit": "celsius"}
Q = {"query": "rain"}

CASES = [
    Case("plain_content", "The answer is 42.", "The answer is 42."),
    Case("one_call", v3(c("get_weather", W)), None, (Expect("get_weather", W),), TOOLS),
    Case("one_call_with_its_id", v3(c("search", Q, "a1B2c3D4e")), None, (Expect("search", Q),), TOOLS),
    Case(
        "several_calls",
        v3(c("get_weather", W, "a1B2c3D4e"), c("search", Q, "Zz9Yy8Xx7")),
        None,
        (Expect("get_weather", W), Expect("search", Q)),
        TOOLS,
    ),
    Case(
        "several_calls_v11",
        v11("get_weather", W) + v11("search", Q, call_id="a1B2c3D4e"),
        None,
        (Expect("get_weather", W), Expect("search", Q)),
        TOOLS,
    ),
    Case(
        "content_around_calls",
        "Let me check. " + v11("get_weather", W) + " Done.",
        "Let me check.  Done.",
        (Expect("get_weather", W),),
        TOOLS,
    ),
    Case("content_before_v3_calls", "Checking.\n" + v3(c("search", Q)), "Checking.", (Expect("search", Q),), TOOLS),
    Case("nested_escaped_unicode", v3(c("search", TRICKY)), None, (Expect("search", TRICKY),), (SEARCH,)),
    Case("nested_escaped_unicode_v11", v11("search", TRICKY), None, (Expect("search", TRICKY),), (SEARCH,)),
    Case("truncated", "Sure. " + v3(c("get_weather", W))[:-12], "Sure.", (Expect(status=S.TRUNCATED),), TOOLS),
    Case("truncated_v11", v11("get_weather", W)[:-6], None, (Expect(status=S.TRUNCATED),), TOOLS),
    Case(
        "truncated_after_a_good_call",
        v3(c("search", {"query": "a"}), c("search", {"query": "b"}))[:-9],
        None,
        (Expect("search", {"query": "a"}), Expect(status=S.TRUNCATED)),
    ),
    Case("marker_alone_is_truncated", "[TOOL_CALLS]", None, (Expect(status=S.TRUNCATED),)),
    Case(
        "invalid_json",
        v3(raw='[{"name": "search", "arguments": {"query": "x",}}]'),
        None,
        (Expect(status=S.INVALID_JSON),),
    ),
    Case("invalid_json_v11", '[TOOL_CALLS]search[ARGS]{"query": x}', None, (Expect(status=S.INVALID_JSON),)),
    Case("invalid_arguments", v3(c("search", ["x"])), None, (Expect(status=S.INVALID_ARGUMENTS),)),
    Case("missing_name", v3(raw='[{"arguments": {"query": "x"}}]'), None, (Expect(status=S.MISSING_NAME),)),
    Case("unknown_tool", v3(c("get_time", {})), None, (Expect("get_time", {}, S.UNKNOWN_TOOL),), TOOLS),
    # [ARGS] skipped (text decoded without special tokens): a lenient parse repairs it, strict reports it
    Case("v11_call_without_args_marker", '[TOOL_CALLS]search{"query": "x"}', None, (Expect(status=S.INVALID_JSON),)),
    Case(
        "text_between_marker_and_list",  # vLLM's pre-v11 fallback finds the list; strict reports each call
        '[TOOL_CALLS] ok: [{"name": "search", "arguments": {"query": "x"}}] done',
        "done",
        (Expect(status=S.INVALID_JSON),),
    ),
    Case("no_call_after_marker", "[TOOL_CALLS] only some words", None, (Expect(status=S.INVALID_JSON),)),
    Case(
        "schema_mismatch",  # unit must be one of the $defs enum
        v11("get_weather", {"city": "Paris", "unit": "kelvin"}),
        None,
        (Expect("get_weather", {"city": "Paris", "unit": "kelvin"}, S.SCHEMA_MISMATCH),),
        TOOLS,
    ),
]

IDS_CASES = [
    IdsCase(
        "literal_marker_is_content",
        ("I would write ", Spelled("[TOOL_CALLS]"), ' [{"name": "x"}] here.'),
        'I would write [TOOL_CALLS] [{"name": "x"}] here.',
    ),
    IdsCase(
        "literal_args_marker_inside_arguments",
        ('[TOOL_CALLS][{"name": "search", "arguments": {"query": "', Spelled("[ARGS]"), '"}}]'),
        None,
        (Expect("search", {"query": "[ARGS]"}),),
        TOOLS,
    ),
]
