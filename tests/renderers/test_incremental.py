"""Streaming decode (incremental.py) emits exactly the tokenizer's own text, with linear work.

Every registered renderer's real tokenizer, on the Hub golden texts and on random ID sequences (halves
of multi-byte characters, added tokens anywhere), fed one token at a time and in random chunks.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from agentroll.renderers import available, get_renderer
from agentroll.renderers.incremental import IncrementalDecoder

GOLDENS = Path(__file__).parent.parent / "data" / "chat_templates" / "hfjs_jinja_e2e_cases.json"


def _sequences(tok, rng: random.Random) -> list[list[int]]:
    goldens = [c["target"] for cases in json.loads(GOLDENS.read_text()).values() for c in cases.values()]
    texts = [*goldens, "naïve café 北京 🙂🙂 \u200d 👩‍👩‍👧 x", "  leading spaces\n\n\ttabs"]
    out = [tok.encode(t) for t in texts]
    vocab = max(i for ids in out for i in ids) + 1
    for _ in range(60):
        out.append([rng.randrange(vocab) for _ in range(rng.randrange(1, 60))])
    return out


def _stream(tok, ids: list[int], rng: random.Random) -> tuple[str, list[str]]:
    dec = IncrementalDecoder(tok.decode)
    emitted: list[str] = []
    i = 0
    while i < len(ids):
        step = 1 if rng.random() < 0.7 else rng.randrange(1, 8)
        emitted.append(dec.extend(ids[i : i + step]))
        i += step
    emitted.append(dec.extend((), final=True))
    return dec.text, emitted


@pytest.mark.parametrize("name", available())
def test_streamed_text_equals_the_tokenizers_decode(name):
    tok = get_renderer(name).tokenizer
    rng = random.Random(name)
    for ids in _sequences(tok, rng):
        text, emitted = _stream(tok, ids, rng)
        assert "".join(emitted) == text == tok.decode(ids), (name, ids[:20])


def test_an_unfinished_character_waits_for_its_bytes():
    tok = get_renderer("smollm2").tokenizer
    ids = tok.encode("🙂")
    assert len(ids) > 1  # byte-level: the emoji's four bytes span several tokens
    dec = IncrementalDecoder(tok.decode)
    assert [dec.extend([i]) for i in ids[:-1]] == [""] * (len(ids) - 1)
    assert dec.pending
    assert dec.extend(ids[-1:]) == "🙂" and not dec.pending


def test_a_character_cut_short_at_the_end_comes_out_as_a_replacement():
    tok = get_renderer("smollm2").tokenizer
    ids = tok.encode("a🙂")[:-1]
    dec = IncrementalDecoder(tok.decode)
    assert dec.extend(ids) == "" and dec.pending  # the whole window ends in a cut character
    dec.extend((), final=True)
    assert dec.text == tok.decode(ids) and dec.text.endswith("\ufffd")


def test_decoding_work_is_linear_in_the_number_of_tokens():
    tok = get_renderer("smollm2").tokenizer
    ids = tok.encode("The answer is 42, and here is why. " * 120)
    decoded: list[int] = []

    def counting(window):
        decoded.append(len(window))
        return tok.decode(window)

    dec = IncrementalDecoder(counting)
    for i in ids:
        dec.extend([i])
    assert dec.text == tok.decode(ids)
    assert sum(decoded) <= 4 * len(ids)  # two short windows per token, not the whole prefix each time
