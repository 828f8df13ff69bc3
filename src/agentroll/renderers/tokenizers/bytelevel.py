"""Byte-level BPE pieces shared by the builders: byte alphabet, merges from ranks, assembly.

Every tokenizer built here is GPT-2-style byte-level BPE: text is split by a
pre-tokenizer regex, each piece is spelled in the 256-character byte alphabet,
and BPE merges pieces into vocabulary tokens. The sources differ only in how
they hand over the vocabulary (GGUF strings + merges, or tiktoken-style ranks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agentroll.errors import TokenizerError
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

# The pre-tokenizer regexes of the published tokenizer.json files (Qwen2's splits
# digits one by one; Llama 3's keeps runs of up to three).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)


def byte_alphabet() -> dict[int, str]:
    """byte -> the printable character GPT-2 spells it with (printable Latin-1 as itself, the rest shifted to 256+)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    spelling = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in spelling:
            spelling[b] = chr(256 + shifted)
            shifted += 1
    return spelling


_SPELLING = byte_alphabet()


def spell(raw: bytes) -> str:
    """Raw token bytes in the byte alphabet (the form tokenizer.json stores)."""
    return "".join(_SPELLING[b] for b in raw)


def _bpe_parts(ranks: Mapping[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """tiktoken's merge loop on `token`, allowing only merges ranked below `max_rank`."""
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 1:
        best_i, best_rank = -1, max_rank
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and rank < best_rank:
                best_i, best_rank = i, rank
        if best_i < 0:
            break
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts


def merges_from_ranks(ranks: Mapping[bytes, int]) -> list[tuple[str, str]]:
    """The merge list a rank-only vocabulary implies, in rank order.

    A token's merge is the last step of BPE on its own bytes using only
    lower-ranked tokens: if that leaves exactly two parts, they merge into it.
    This is how tiktoken vocabularies (Llama 3's included) were converted to
    tokenizer.json; tokens that never reduce to two parts get no merge and are
    reached only whole (hence `ignore_merges` where the source tokenizer sets it).
    """
    merges: list[tuple[str, str]] = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) < 2:
            continue
        parts = _bpe_parts(ranks, token, max_rank=rank)
        if len(parts) == 2:
            merges.append((spell(parts[0]), spell(parts[1])))
    return merges


@dataclass(slots=True)
class ByteLevelSpec:
    """Everything needed to assemble one byte-level BPE tokenizer.

    `split_regex` is the pre-tokenizer pattern (None: GPT-2's built-in regex);
    `added` maps token text -> (id, special); `bos_template` adds that token
    in front of every encode, as Llama 3's post-processor does.
    """

    vocab: dict[str, int]
    merges: list[tuple[str, str]]
    split_regex: str | None
    added: dict[str, tuple[int, bool]] = field(default_factory=dict)
    nfc: bool = False
    individual_digits: bool = False
    ignore_merges: bool = False
    bos_template: str | None = None


def assemble(spec: ByteLevelSpec) -> Tokenizer:
    """Build the `tokenizers` object; added tokens keep their true IDs."""
    bpe = models.BPE(
        vocab=spec.vocab,
        merges=spec.merges,
        dropout=None,
        unk_token=None,
        continuing_subword_prefix="",
        end_of_word_suffix="",
        fuse_unk=False,
        byte_fallback=False,
        ignore_merges=spec.ignore_merges,
    )
    tok = Tokenizer(bpe)
    if spec.nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = _pre_tokenizer(spec)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = _post_processor(spec)
    _add_tokens(tok, spec.added)
    return tok


def _pre_tokenizer(spec: ByteLevelSpec) -> pre_tokenizers.PreTokenizer:
    steps: list[pre_tokenizers.PreTokenizer] = []
    if spec.individual_digits:
        steps.append(pre_tokenizers.Digits(individual_digits=True))
    if spec.split_regex is not None:
        steps.append(pre_tokenizers.Split(Regex(spec.split_regex), behavior="isolated", invert=False))
    # The regex (ours, or GPT-2's when none is given) does the splitting; ByteLevel only respells.
    gpt2_regex = spec.split_regex is None
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=gpt2_regex))
    return pre_tokenizers.Sequence(steps)


def _post_processor(spec: ByteLevelSpec) -> processors.PostProcessor:
    offsets = processors.ByteLevel(trim_offsets=False)
    if spec.bos_template is None:
        return offsets
    bos_id = spec.added[spec.bos_template][0]
    bos = processors.TemplateProcessing(
        single=f"{spec.bos_template} $A:0",
        pair=f"{spec.bos_template} $A:0 {spec.bos_template}:1 $B:1",
        special_tokens=[(spec.bos_template, bos_id)],
    )
    return processors.Sequence([offsets, bos])


def _add_tokens(tok: Tokenizer, added: Mapping[str, tuple[int, bool]]) -> None:
    """Add tokens in ID order and check each landed on its true ID (tokenizers assigns IDs itself)."""
    for content, (token_id, special) in sorted(added.items(), key=lambda item: item[1][0]):
        token = AddedToken(content, special=special, normalized=False, lstrip=False, rstrip=False, single_word=False)
        if special:
            tok.add_special_tokens([token])
        else:
            tok.add_tokens([token])
        got = tok.token_to_id(content)
        if got != token_id:
            raise TokenizerError(f"added token {content!r} got id {got}, expected {token_id}")


def vocab_from_ranks(ranks: Iterable[tuple[bytes, int]]) -> dict[str, int]:
    """Rank table -> tokenizer.json vocabulary (spelled token -> id; the rank is the id)."""
    return {spell(raw): rank for raw, rank in ranks}
