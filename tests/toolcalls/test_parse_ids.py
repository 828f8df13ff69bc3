"""Token-level parsing details the case tables do not pin down: spans inside text, vocab discovery."""

from __future__ import annotations

from agentroll.renderers.toolcalls import get_parser
from agentroll.renderers.toolcalls.base import discover_special_ids
from agentroll.types import ParseStatus

from .casekit import deepseek_vocab, quicktok_vocab


def test_special_ids_are_discovered_from_the_vocabulary_itself():
    qwen = quicktok_vocab("qwen3")
    assert discover_special_ids(qwen, ["<tool_call>", "</tool_call>", "<function="]) == {
        "<tool_call>": 151657,
        "</tool_call>": 151658,
    }
    ds = discover_special_ids(deepseek_vocab(), get_parser("deepseek_v3").markers)
    assert set(ds) == set(get_parser("deepseek_v3").markers)


def test_spans_inside_text_map_to_exactly_the_calls_tokens_around_multibyte_text():
    """No marker is a special token here (Qwen vocab, llama3_json): spans come from decoded offsets."""
    qwen = quicktok_vocab("qwen3")
    text = '日本語の説明 🙂🙂 <|python_tag|>{"name": "search", "parameters": {"query": "é🙂"}} 終わり🙂'
    ids = qwen.encode(text)
    parsed = get_parser("llama3_json").parse_ids(ids, qwen)
    (call,) = parsed.tool_calls
    assert call.status == ParseStatus.OK and call.call.arguments == {"query": "é🙂"}
    assert call.raw == text[text.index("<|python") : text.index("}}") + 2]
    # The span is every token overlapping the call: here the first one is " <", space included.
    start, end = call.span
    assert qwen.decode(ids[start:end]) == " " + call.raw
    assert parsed.message.content == "日本語の説明 🙂🙂  終わり🙂"


def test_explicit_special_ids_decide_which_marker_text_counts():
    """With no special IDs given for it, `<tool_call>` spelled in text is a marker again (a vocabulary
    where the tag is not one token, e.g. ChatML models prompted with the Hermes format)."""
    qwen = quicktok_vocab("qwen3")
    ids = qwen.ordinary('<tool_call>{"name": "f", "arguments": {}}</tool_call>')
    assert get_parser("hermes").parse_ids(ids, qwen).tool_calls == ()
    (call,) = get_parser("hermes").parse_ids(ids, qwen, special_ids={}).tool_calls
    assert call.call.name == "f" and call.span == (0, len(ids))


def test_a_turn_cut_inside_a_call_is_truncated_with_a_token_span_to_the_end():
    qwen = quicktok_vocab("qwen3")
    ids = qwen.encode('ok <tool_call>{"name": "f", "argum')
    parsed = get_parser("hermes").parse_ids(ids, qwen)
    (call,) = parsed.tool_calls
    assert call.status == ParseStatus.TRUNCATED and call.span[1] == len(ids)
    assert ids[call.span[0]] == 151657 and parsed.message.content == "ok"
