"""Encoding piece by piece between added tokens (segments.py) gives exactly the tokenizer's own IDs.

The conformance suite already compares every render with `apply_chat_template(tokenize=True)`; these
tests add the 53 Hub golden texts (special tokens of many families, in every arrangement) and strings
built to break a naive split, for every registered renderer that uses the piecewise encoder.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from agentroll.renderers import available, get_renderer
from agentroll.renderers.segments import SegmentEncoder
from tokenizers import Tokenizer, models, pre_tokenizers

GOLDENS = Path(__file__).parent.parent / "data" / "chat_templates" / "hfjs_jinja_e2e_cases.json"


def _piecewise_renderers() -> list[str]:
    return [n for n in available() if getattr(get_renderer(n).tokenizer, "_segments", None) is not None]


def _awkward_texts(specials: list[str]) -> list[str]:
    """Added tokens against spaces, newlines, digits, each other, halves of themselves and non-ASCII text."""
    texts = ["", " ", "\n\n", "plain text only", "12345 67.890", "naïve café 北京 🙂"]
    for s in specials:
        texts += [s, s + s, f" {s} ", f"\n{s}\n", f"x{s}y", f"{s[:-1]} {s}", f"{s[1:]}{s}{s[:3]}", f"1{s}2", f"🙂{s}é"]
    texts.append(" ".join(specials))
    texts.append("".join(specials))
    return texts


def test_the_common_tokenizers_encode_piecewise():
    assert {"smollm2", "qwen2.5", "qwen3", "llama3.1", "deepseek-r1"} <= set(_piecewise_renderers())


@pytest.mark.parametrize("name", _piecewise_renderers())
def test_piecewise_encoding_equals_the_tokenizers_own(name):
    tok = get_renderer(name).tokenizer
    backend = tok._backend
    specials = [t.content for t in backend.get_added_tokens_decoder().values()][:40]
    goldens = [c["target"] for cases in json.loads(GOLDENS.read_text()).values() for c in cases.values()]
    texts = goldens + _awkward_texts(specials)
    for text in texts + texts:  # the second pass reads every piece from the cache
        assert tok.encode(text) == backend.encode(text, add_special_tokens=False).ids, repr(text[:200])


def test_a_tokenizer_that_treats_the_first_piece_differently_is_encoded_whole():
    # SentencePiece-style Metaspace with prepend_scheme "first" puts "▁" before the text's first piece only:
    # encoded on its own, every piece would be a first piece.
    backend = Tokenizer(models.WordLevel({"▁hi": 0, "hi": 1, "[UNK]": 2}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    backend.add_special_tokens(["<s>"])
    assert backend.encode("hi<s>hi", add_special_tokens=False).ids == [0, 3, 1]
    assert backend.encode("hi", add_special_tokens=False).ids == [0]  # so piece by piece would say [0, 3, 0]
    assert SegmentEncoder.for_backend(backend, json.loads(backend.to_str())) is None


def test_added_tokens_that_strip_spaces_turn_piecewise_encoding_off():
    spec = json.loads(get_renderer("smollm2").tokenizer._backend.to_str())
    spec["added_tokens"][1]["lstrip"] = True
    assert SegmentEncoder.for_backend(Tokenizer.from_str(json.dumps(spec)), spec) is None


def _joining_renderers() -> list[str]:
    return [n for n in available() if getattr(get_renderer(n).tokenizer, "_join_pieces", False)]


def test_the_common_tokenizers_decode_by_joining_pieces():
    assert {"smollm2", "qwen2.5", "qwen3", "llama3.1", "deepseek-r1"} <= set(_joining_renderers())


@pytest.mark.parametrize("name", _joining_renderers())
def test_decoding_by_joining_pieces_equals_the_tokenizers_own(name):
    tok = get_renderer(name).tokenizer
    backend = tok._backend
    goldens = [c["target"] for cases in json.loads(GOLDENS.read_text()).values() for c in cases.values()]
    sequences = [backend.encode(t, add_special_tokens=False).ids for t in goldens]
    rng = random.Random(0)
    added = list(backend.get_added_tokens_decoder())
    vocab = backend.get_vocab_size()
    for _ in range(300):  # any IDs at all: halves of multi-byte characters, added tokens anywhere
        sequences.append([rng.choice(added) if rng.random() < 0.1 else rng.randrange(vocab) for _ in range(40)])
    for ids in sequences:
        assert tok.decode(ids) == backend.decode(ids, skip_special_tokens=False), ids[:20]
