"""The o200k_base.tiktoken file openai-harmony needs offline, rebuilt from quicktok-v1's ranks."""

from __future__ import annotations

import hashlib
import random

import pytest

from agentroll.renderers.harmony import O200K_SHA256, HarmonyTokenizer, o200k_tiktoken_dir
from tests.renderers.cases_harmony import harmony_encoding

ALPHABET = "abcXYZ019 \n\t.,;:'\"!?-_/\\{}[]()<>|éü日本語🙂ß" + "  "


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(ALPHABET, k=rng.randint(0, 40))) for _ in range(n)]


@pytest.fixture(scope="module")
def built_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AGENTROLL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield o200k_tiktoken_dir()
    mp.undo()


def test_rebuilt_file_has_the_published_sha256(built_dir):
    data = (built_dir / "o200k_base.tiktoken").read_bytes()
    assert hashlib.sha256(data).hexdigest() == O200K_SHA256
    assert data.count(b"\n") == 199998


def test_a_corrupted_cache_file_is_rebuilt(built_dir):
    path = built_dir / "o200k_base.tiktoken"
    path.write_bytes(b"garbage")
    assert o200k_tiktoken_dir() == built_dir
    assert hashlib.sha256(path.read_bytes()).hexdigest() == O200K_SHA256


def test_tiktoken_over_the_rebuilt_file_encodes_like_quicktok_o200k(built_dir):
    import quicktok
    import tiktoken
    from quicktok._import_core import O200K_PAT  # tiktoken's o200k split pattern, verbatim
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(built_dir / "o200k_base.tiktoken"), expected_hash=O200K_SHA256)
    enc = tiktoken.Encoding("o200k_rebuilt", pat_str=O200K_PAT, mergeable_ranks=ranks, special_tokens={})
    reference = quicktok.get_encoding("o200k_base")
    for text in random_texts(300):
        assert enc.encode_ordinary(text) == reference.encode_ordinary(text), repr(text)


def test_openai_harmony_and_the_native_tokenizer_agree_on_random_text():
    enc, native = harmony_encoding(), HarmonyTokenizer()
    for text in random_texts(300, seed=1):
        assert native.text(text) == enc.encode(text, disallowed_special=()), repr(text)
    for token in ("<|start|>", "<|message|>", "<|channel|>", "<|end|>", "<|call|>", "<|return|>", "<|constrain|>"):
        assert native.encode(token) == enc.encode(token, allowed_special="all")
