"""Special and added tokens keep their true IDs, stay whole in text, and are special only where the model says so."""

from __future__ import annotations

import pytest

from agentroll.renderers.tokenizers import special_token_ids

# (family, token text, true id) for the tokens renderers and tool-call parsers rely on.
SINGLE_IDS = [
    ("smollm2", "<|endoftext|>", 0),
    ("smollm2", "<|im_start|>", 1),
    ("smollm2", "<|im_end|>", 2),
    ("qwen2.5", "<|endoftext|>", 151643),
    ("qwen2.5", "<|im_start|>", 151644),
    ("qwen2.5", "<|im_end|>", 151645),
    ("qwen2.5", "<tool_call>", 151657),
    ("qwen2.5", "</tool_call>", 151658),
    ("qwen2.5", "<|file_sep|>", 151664),
    ("qwen3", "<tool_response>", 151665),
    ("qwen3", "</tool_response>", 151666),
    ("qwen3", "<think>", 151667),
    ("qwen3", "</think>", 151668),
    ("llama3", "<|begin_of_text|>", 128000),
    ("llama3", "<|end_of_text|>", 128001),
    ("llama3", "<|finetune_right_pad_id|>", 128004),
    ("llama3", "<|start_header_id|>", 128006),
    ("llama3", "<|end_header_id|>", 128007),
    ("llama3", "<|eom_id|>", 128008),
    ("llama3", "<|eot_id|>", 128009),
    ("llama3", "<|python_tag|>", 128010),
    ("llama3", "<|reserved_special_token_247|>", 128255),
    ("deepseek-v3", "<｜begin▁of▁sentence｜>", 0),
    ("deepseek-v3", "<｜end▁of▁sentence｜>", 1),
    ("deepseek-v3", "<think>", 128798),
    ("deepseek-v3", "<｜User｜>", 128803),
    ("deepseek-v3", "<｜Assistant｜>", 128804),
    ("deepseek-v3", "<｜tool▁calls▁begin｜>", 128806),
    ("deepseek-v3", "<｜tool▁sep｜>", 128814),
]


@pytest.mark.parametrize(("family", "text", "token_id"), SINGLE_IDS, ids=[f"{f}:{t}" for f, t, _ in SINGLE_IDS])
def test_special_token_text_encodes_to_its_single_id(tok, family, text, token_id):
    tokenizer = tok(family)
    assert tokenizer.encode(text, add_special_tokens=False) == [token_id]
    # Glued to ordinary text on both sides it still comes out whole.
    ids = tokenizer.encode(f"ab{text}cd", add_special_tokens=False)
    assert token_id in ids
    assert tokenizer.decode(ids) == f"ab{text}cd"
    assert special_token_ids(tokenizer)[text] == token_id


@pytest.mark.parametrize(
    ("family", "bos", "eos", "stop"),
    [
        ("smollm2", "<|im_start|>", "<|im_end|>", 2),
        ("qwen2.5", None, "<|im_end|>", 151645),
        ("qwen3", None, "<|im_end|>", 151645),
        ("llama3", "<|begin_of_text|>", "<|eot_id|>", 128009),
        ("deepseek-v3", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", 1),
    ],
)
def test_bos_and_eos_are_the_instruct_models(tok, family, bos, eos, stop):
    tokenizer = tok(family)
    assert tokenizer.bos_token == bos
    assert tokenizer.eos_token == eos
    assert tokenizer.eos_token_id == stop


def test_qwen_tool_and_think_tags_survive_skip_special_tokens(tok):
    # Qwen's config marks <tool_call>/<think> "special": false, so a decode that drops
    # chat markup still shows tool calls and reasoning; <|im_end|> is dropped.
    qwen3 = tok("qwen3")
    ids = qwen3.encode('<think>x</think><tool_call>{"a": 1}</tool_call><|im_end|>', add_special_tokens=False)
    assert qwen3.decode(ids, skip_special_tokens=True) == '<think>x</think><tool_call>{"a": 1}</tool_call>'


def test_qwen25_has_no_think_or_tool_response_tokens(tok):
    # Those four tokens arrived with Qwen3; Qwen2.5's tokenizer spells them out in pieces.
    qwen25, qwen3 = tok("qwen2.5"), tok("qwen3")
    assert len(qwen25) == 151665
    assert len(qwen3) == 151669
    assert len(qwen25.encode("<think>", add_special_tokens=False)) > 1
    assert "<think>" not in special_token_ids(qwen25)


def test_llama3_adds_bos_like_the_hub_tokenizer_and_chat_markup_is_special(tok):
    llama3 = tok("llama3")
    assert llama3.encode("hi") == [128000, 6151]
    assert llama3.encode("hi", add_special_tokens=False) == [6151]
    ids = llama3.encode("<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", add_special_tokens=False)
    assert llama3.decode(ids, skip_special_tokens=True) == "user\n\nhi"


@pytest.mark.parametrize(("family", "count"), [("smollm2", 17), ("qwen2.5", 22), ("qwen3", 26), ("llama3", 256)])
def test_special_token_ids_lists_every_added_token(tok, family, count):
    ids = special_token_ids(tok(family))
    assert len(ids) == count
    assert len(set(ids.values())) == count


def test_only_sources_that_ship_a_chat_template_have_one(tok):
    # Renderers own templates; a tokenizer carries only the one its source ships.
    assert "<|im_start|>" in tok("smollm2").chat_template
    assert "<｜Assistant｜>" in tok("deepseek-v3").chat_template
    for family in ("qwen2.5", "qwen3", "llama3"):
        assert tok(family).chat_template is None
