"""Rebuilt tokenizers give the token IDs that others published for the real ones.

Every vector below was produced by the original tokenizer (tiktoken / Hugging Face
`tokenizers` on the Hub tokenizer.json) and published in the file named next to it.
"""

from __future__ import annotations

import pytest

# --- Llama 3 ---------------------------------------------------------------
# meta-llama/llama3, llama/test_tokenizer.py (Meta's own tiktoken tokenizer tests).
LLAMA3_META_SENTENCE = ("This is a test sentence.", [2028, 374, 264, 1296, 11914, 13])
LLAMA3_META_DIALOG = [
    128000, 128006, 9125, 128007, 271, 2028, 374, 264, 1296, 11914, 13, 128009,
    128006, 882, 128007, 271, 2028, 374, 264, 2077, 13, 128009,
    128006, 78191, 128007, 271,
]  # fmt: skip

# ml-rust/splintr, tests/fixtures/pretrained/llama3.json: HF `tokenizers` 0.22.1 on
# Llama-3.2-1B's tokenizer.json, add_special_tokens=False.
LLAMA3_SPLINTR = [
    ("   ", [262]),
    ("hello world", [15339, 1917]),
    ("\tindented\twith\ttabs", [197, 485, 16243, 48048, 3324, 3518]),
    ("\n\n\n", [1432]),
    ("multiple   internal    spaces", [36773, 256, 5419, 262, 12908]),
    ("I've got it, don't worry.", [40, 3077, 2751, 433, 11, 1541, 956, 11196, 13]),
    ("punctuation: ,.!?;:'\"()[]{}", [79, 73399, 25, 114014, 58490, 26, 4989, 1, 368, 1318, 6390]),
    ("こんにちは世界", [90115, 102616]),
    ("你好，世界！", [57668, 53901, 3922, 102616, 6447]),
    ("emoji test 😀🎉🚀", [38623, 1296, 91416, 9468, 236, 231, 9468, 248, 222]),
    ("0123456789", [11531, 12901, 17458, 24]),
    ("price: $19.99, quantity: 42", [6692, 25, 400, 777, 13, 1484, 11, 12472, 25, 220, 2983]),
    ("def add(a, b):\n    return a + b\n", [755, 923, 2948, 11, 293, 997, 262, 471, 264, 489, 293, 198]),
    ("   \t\n   ", [262, 1602, 262]),
    ("The\u00a0quick\u00a0fox", [791, 4194, 28863, 4194, 15361]),
    ("12345678901234567890", [4513, 10961, 16474, 11531, 12901, 17458, 1954]),
    ("Löwe löwe Léopard 狮子", [43, 3029, 906, 77233, 906, 445, 978, 33029, 112362, 106, 45829]),
]

# --- Qwen2.5 / Qwen3 (one BPE vocabulary) -------------------------------------
# huggingface/transformers, tests/models/qwen2/test_tokenization_qwen2.py,
# test_tokenizer_integration (Qwen/Qwen-tokenizer; padding dropped).
QWEN_TRANSFORMERS = [
    (
        "Transformers (formerly known as pytorch-transformers and pytorch-pretrained-bert) provides "
        "general-purpose architectures (BERT, GPT-2, RoBERTa, XLM, DistilBert, XLNet...) for Natural "
        "Language Understanding (NLU) and Natural Language Generation (NLG) with over 32+ pretrained "
        "models in 100+ languages and deep interoperability between Jax, PyTorch and TensorFlow.",
        [
            8963, 388, 320, 69514, 3881, 438, 4510, 27414, 32852, 388, 323, 4510, 27414, 21334, 35722, 1455, 529, 8,
            5707, 4586, 58238, 77235, 320, 61437, 11, 479, 2828, 12, 17, 11, 11830, 61437, 64, 11, 1599, 10994, 11,
            27604, 321, 33, 529, 11, 29881, 6954, 32574, 369, 18448, 11434, 45451, 320, 45, 23236, 8, 323, 18448,
            11434, 23470, 320, 30042, 38, 8, 448, 916, 220, 18, 17, 10, 80669, 4119, 304, 220, 16, 15, 15, 10, 15459,
            323, 5538, 94130, 2897, 1948, 619, 706, 11, 5355, 51, 21584, 323, 94986, 13,
        ],
    ),
    (
        "🤗 Transformers 提供了可以轻松地下载并且训练先进的预训练模型的 API 和工具。"
        "使用预训练模型可以减少计算消耗和碳排放，并且节省从头训练所需要的时间和资源。",
        [
            144834, 80532, 93685, 83744, 34187, 73670, 104261, 29490, 62189, 103937, 104034, 102830, 98841, 104034,
            104949, 9370, 5333, 58143, 102011, 1773, 37029, 98841, 104034, 104949, 73670, 101940, 100768, 104997,
            33108, 100912, 105054, 90395, 100136, 106831, 45181, 64355, 104034, 113521, 101975, 33108, 85329, 1773,
        ],
    ),
    (
        '```python\ntokenizer = AutoTokenizer.from_pretrained("Qwen/Qwen-tokenizer")\ntokenizer("世界，你好！")```',
        [
            73594, 12669, 198, 85593, 284, 8979, 37434, 6387, 10442, 35722, 445, 48, 16948, 45274, 16948, 34841,
            3135, 1138, 85593, 445, 99489, 3837, 108386, 6313, 899, 73594,
        ],
    ),
]  # fmt: skip

# ml-rust/splintr, tests/fixtures/pretrained/qwen3.json: HF `tokenizers` 0.22.1 on
# Qwen3-8B's tokenizer.json, add_special_tokens=False.
QWEN_SPLINTR = [
    ("  ", [256]),
    ("Hello World!", [9707, 4337, 0]),
    ("\tindented\twith\ttabs", [197, 484, 15864, 46948, 3244, 3435]),
    ("trailing whitespace   ", [376, 14277, 36372, 262]),
    ("I've got it, don't worry.", [40, 3003, 2684, 432, 11, 1513, 944, 10955, 13]),
    ("it's a test — isn't it?", [275, 594, 264, 1273, 1959, 4436, 944, 432, 30]),
    ("日本語のテキストです。", [101059, 102819, 15767, 56833, 61803, 70534, 37541, 1773]),
    ("안녕하세요 세계", [126246, 144370, 91145, 133196]),
    (
        "family: 👨\u200d👩\u200d👧\u200d👦",
        [18984, 25, 61804, 101, 378, 235, 145233, 378, 235, 145665, 378, 235, 145988],
    ),
    ("café résumé naïve", [924, 58858, 9333, 1242, 963, 94880, 586]),
    ("the year 2024 had 365 days", [1782, 1042, 220, 17, 15, 17, 19, 1030, 220, 18, 21, 20, 2849]),
    ('if (x == 42) { print("hi"); }', [333, 320, 87, 621, 220, 19, 17, 8, 314, 1173, 445, 6023, 5038, 335]),
    ("   \t\n   ", [262, 1572, 262]),
    ("The\u00a0quick\u00a0fox", [785, 4102, 27763, 4102, 15011]),
    ("self.assertEqual(x, 42)", [721, 7874, 2075, 11, 220, 19, 17, 8]),
    ("台北101大樓", [106756, 16, 15, 16, 26288, 107843]),
]

# --- DeepSeek-V3 / R1 --------------------------------------------------------
# ml-rust/splintr, tests/deepseek_v3.rs (ids from HF `tokenizers` on DeepSeek's tokenizer.json).
DEEPSEEK_SPLINTR = [
    ("Hello world", [19923, 2058]),
    (" hello world ", [44388, 2058, 223]),
    ("你好世界", [30594, 3427]),
    ("Hello 你好 World 世界!", [19923, 223, 30594, 4495, 223, 3427, 3]),
    ("Hello 🌍 World!", [19923, 73369, 238, 4495, 3]),
    ("getUserName", [1133, 110280]),
    ("self.assertEqual(x, 42)", [2161, 38377, 4042, 14, 223, 3180, 11]),
    ("12345678901234567890", [6895, 18009, 25744, 16993, 18014, 27183, 2225]),
    ("こんにちはカタカナ", [4549, 7245, 2298, 12457, 2841, 15961, 11767, 15961, 27071]),
    ("Mixed混合Text文字", [113685, 14769, 7233, 10541]),
]

# --- SmolLM2 -----------------------------------------------------------------
# radxa-docs/docs, docs/aicore/ax-m1/LLM/smolLM2-360m.md: HF apply_chat_template of
# [user: "hello world"] for SmolLM2-360M-Instruct (same tokenizer and template as 135M).
SMOLLM2_RADXA_CHAT = [
    1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198,
    1, 4093, 198, 28120, 905, 2, 198, 1, 520, 9531, 198,
]  # fmt: skip
# iangitonga/jarvis.cpp, llm/smollm2.h: the default-system-prompt prefix and the turn end.
SMOLLM2_JARVIS = [
    (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\n",
        [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2,
         198, 1, 4093, 198],
    ),
    ("<|im_end|>\n", [2, 198]),
]  # fmt: skip


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def test_llama3_matches_metas_tokenizer_tests(tok):
    llama3 = tok("llama3")
    text, ids = LLAMA3_META_SENTENCE
    # Meta's encode(bos=True, eos=True); the HF tokenizer adds BOS itself and never EOS.
    assert [*llama3.encode(text), llama3.convert_tokens_to_ids("<|end_of_text|>")] == [128000, *ids, 128001]
    assert llama3.decode([128000, *ids, 128001]) == f"<|begin_of_text|>{text}<|end_of_text|>"
    dialog = (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nThis is a test sentence.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nThis is a response.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert _ids(llama3, dialog) == LLAMA3_META_DIALOG


@pytest.mark.parametrize(("text", "ids"), LLAMA3_SPLINTR, ids=[repr(t)[:24] for t, _ in LLAMA3_SPLINTR])
def test_llama3_matches_hub_tokenizer_vectors(tok, text, ids):
    assert _ids(tok("llama3"), text) == ids


@pytest.mark.parametrize("family", ["qwen2.5", "qwen3"])
def test_qwen_matches_transformers_integration_vectors(tok, family):
    for text, ids in QWEN_TRANSFORMERS:
        assert _ids(tok(family), text) == ids


@pytest.mark.parametrize("family", ["qwen2.5", "qwen3"])
@pytest.mark.parametrize(("text", "ids"), QWEN_SPLINTR, ids=[repr(t)[:24] for t, _ in QWEN_SPLINTR])
def test_qwen_matches_hub_tokenizer_vectors(tok, family, text, ids):
    assert _ids(tok(family), text) == ids


@pytest.mark.parametrize(("text", "ids"), DEEPSEEK_SPLINTR, ids=[repr(t)[:24] for t, _ in DEEPSEEK_SPLINTR])
def test_deepseek_matches_hub_tokenizer_vectors(tok, text, ids):
    assert _ids(tok("deepseek-v3"), text) == ids


def test_smollm2_gguf_template_renders_the_published_chat_ids(tok):
    smollm2 = tok("smollm2")
    ids = smollm2.apply_chat_template(
        [{"role": "user", "content": "hello world"}], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    assert list(ids) == SMOLLM2_RADXA_CHAT


@pytest.mark.parametrize(("text", "ids"), SMOLLM2_JARVIS, ids=["prefix", "turn-end"])
def test_smollm2_matches_published_prompt_ids(tok, text, ids):
    assert _ids(tok("smollm2"), text) == ids
