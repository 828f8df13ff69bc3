"""The rebuilt Qwen and Llama 3 tokenizers encode exactly like quicktok's own (tiktoken-shaped) encoder.

quicktok is an independent implementation over the same rank tables, so any
slip in our merges, pre-tokenizer regex or normalizer shows up as a mismatch on
seeded random text (whitespace runs, digits, code, contractions, CJK, emoji,
combining marks, arbitrary code points) and on real text (GSM8K).
"""

from __future__ import annotations

import json
import random
import string
import unicodedata
from pathlib import Path

import pytest
import quicktok

from agentroll.renderers.tokenizers.bytelevel import spell

GSM8K = Path(__file__).resolve().parents[1] / "data" / "gsm8k" / "test.jsonl"
N_RANDOM = 3000

_PIECES: dict[str, list[str]] = {
    "word": ["the", "The", "quick", "HTTP", "getUserName", "naïve", "Zürich", "über", "XML", "a", "I"],
    "letters": list(string.ascii_letters),
    "digits": [*string.digits, "2024", "3.14159", "1,000,000", "0x1F", "42"],
    "space": [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2009", "\x0b", "\x0c"],
    "punct": [*string.punctuation, "...", "—", "–", "«", "»", "“", "”", "¿", "。", "，", "！"],
    "contraction": ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "n't", "’s"],
    "code": ["def ", "return ", "==", "->", "{", "}", "()", "[i]", "    ", "//", "#include", "</div>", "\\n", "```"],
    "cjk": ["日本語", "中文", "你好", "世界", "한국어", "こんにちは", "カタカナ", "漢字", "北京市"],
    "script": ["привет", "мир", "مرحبا", "हिन्दी", "ภาษาไทย", "Ελληνικά", "עברית", "ქართული"],
    "emoji": ["😀", "🚀", "🎉", "👍🏽", "👨\u200d👩\u200d👧", "🏳️\u200d🌈", "🇫🇷", "❤️", "🤗"],
    "combining": ["e\u0301", "a\u0308", "\u03d2\u0301", "n\u0303", "\u0301", "\u0308\u0308", "\u1100\u1161"],
}


def random_texts(seed: int, count: int) -> list[str]:
    """Seeded strings stitched from the categories above, plus strings of arbitrary code points."""
    rng = random.Random(seed)
    kinds = list(_PIECES)
    texts = ["".join(rng.choice(_PIECES[rng.choice(kinds)]) for _ in range(rng.randint(1, 40))) for _ in range(count)]
    for _ in range(count // 6):
        chars = (chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(1, 30)))
        texts.append("".join(c for c in chars if not 0xD800 <= ord(c) <= 0xDFFF))
    return texts


def gsm8k_texts() -> list[str]:
    rows = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row["question"] for row in rows] + [row["answer"] for row in rows]


def _first_mismatch(tokenizer, encoding, texts: list[str]) -> tuple[str, list[int], list[int]] | None:
    ours = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    for text, enc in zip(texts, ours, strict=True):
        theirs = list(encoding.encode_ordinary(text))
        if enc.ids != theirs:
            return text, enc.ids, theirs
    return None


FAMILIES = [("qwen2.5", "qwen3"), ("qwen3", "qwen3"), ("llama3", "llama3")]


@pytest.mark.parametrize(("family", "encoding"), FAMILIES)
def test_rebuilt_tokenizer_encodes_random_text_like_quicktok(tok, family, encoding):
    texts = random_texts(seed=20261121, count=N_RANDOM)
    assert _first_mismatch(tok(family), quicktok.get_encoding(encoding), texts) is None


@pytest.mark.parametrize(("family", "encoding"), FAMILIES)
def test_rebuilt_tokenizer_encodes_gsm8k_like_quicktok(tok, family, encoding):
    texts = gsm8k_texts()
    assert len(texts) == 2 * 1319
    assert _first_mismatch(tok(family), quicktok.get_encoding(encoding), texts) is None


def _missing_bytes(tokenizer) -> set[int]:
    """Bytes with no vocabulary token (SmolLM2's GGUF lacks 21 of the 256; the others lack none)."""
    vocab = tokenizer.get_vocab()
    return {b for b in range(256) if spell(bytes([b])) not in vocab}


@pytest.mark.parametrize("family", ["qwen2.5", "qwen3", "llama3", "smollm2", "deepseek-v3"])
def test_decode_returns_the_encoded_text(tok, family):
    tokenizer = tok(family)
    # Qwen normalizes to NFC before splitting, so its round trip is exact up to NFC.
    expected = (lambda t: unicodedata.normalize("NFC", t)) if family.startswith("qwen") else (lambda t: t)
    missing = _missing_bytes(tokenizer)
    texts = [t for t in random_texts(seed=7, count=500) + gsm8k_texts()[:200] if not missing & set(t.encode())]
    assert len(texts) > 600
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == expected(text), repr(text)


def test_smollm2_drops_bytes_missing_from_its_vocabulary(tok):
    # Byte-level BPE without an unk token (as on the Hub) silently skips a byte it has no token for.
    smollm2 = tok("smollm2")
    assert smollm2.encode("\x04", add_special_tokens=False) == []
    assert smollm2.decode(smollm2.encode("a\x04b", add_special_tokens=False)) == "ab"
