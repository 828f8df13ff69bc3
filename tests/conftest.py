"""Session-wide fixtures shared by every test package: one event-loop thread, the default model
checkpoint and one embedded engine for the whole session (vLLM on CPU takes ~30 s to start)."""

from tests.engines.conftest import HAVE_VLLM, LoopThread, embedded, loop, model_dir, needs_vllm

__all__ = ["HAVE_VLLM", "LoopThread", "embedded", "loop", "model_dir", "needs_vllm"]
