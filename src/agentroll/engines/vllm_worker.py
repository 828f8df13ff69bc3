"""agentroll's methods on vLLM's workers (vLLM's `worker_extension_cls`): a weight reload that leaves no
stale copy behind, and digests of the weights a worker actually computes with.

vLLM's `reload_weights` loads a checkpoint layer by layer; a layer that receives no tensor keeps its old
kernel state. An LM head tied to the input embeddings receives none (a checkpoint stores the tied matrix
once, under the embedding's name). On a GPU the head reads the shared parameter, so that is harmless; on
CPU it multiplies with a copy prepacked for oneDNN when it was loaded, and that copy still holds the old
embedding: the engine then samples from a model no trainer has. `agentroll_reload` reloads, then runs the
load-time processing again for every layer whose weight is shared with another layer, which rebuilds it.

vLLM's own checksum (`compute_weight_checksums`) hashes parameters; on CPU a linear layer's parameter is
emptied once its weight is prepacked, so that checksum cannot see any linear layer. `agentroll_weight_digests`
hashes what each layer computes with: the effective matrix of a CPU-dispatched linear layer is read back by
multiplying the identity through it (exact: every output is one weight times 1.0 plus zeros).

The engines name this class when they start vLLM (the embedded engine; `engines.launch` for servers):
    --worker-extension-cls agentroll.engines.vllm_worker.AgentrollWorker
"""

from __future__ import annotations

from typing import Any

from agentroll.engines.weights import tensor_digest

EXTENSION = "agentroll.engines.vllm_worker.AgentrollWorker"
RELOAD, DIGESTS = "agentroll_reload", "agentroll_weight_digests"


class AgentrollWorker:
    """Mixed into vLLM's worker class by vLLM (so `self` is the worker: `reload_weights`, `model_runner`)."""

    def agentroll_reload(self, weights_path: str) -> list[str]:
        """Reload every weight from `weights_path` in place; the names of the shared layers re-processed."""
        self.reload_weights(weights_path=weights_path, is_checkpoint_format=True)
        return refresh_shared_layers(self.model_runner.get_model(), self.vllm_config)

    def agentroll_weight_digests(self) -> dict[str, str]:
        return effective_digests(self.model_runner.get_model())


def refresh_shared_layers(model: Any, vllm_config: Any) -> list[str]:
    """Run load-time processing again on layers that share their weight with another layer (tied heads)."""
    import torch
    from vllm.config import set_current_vllm_config

    holders: dict[int, list[tuple[str, Any]]] = {}
    for name, module in model.named_modules():
        weight = module._parameters.get("weight")
        if weight is not None:
            holders.setdefault(id(weight), []).append((name, module))
    refreshed = []
    with torch.no_grad(), set_current_vllm_config(vllm_config):
        for group in holders.values():
            if len(group) < 2:
                continue
            for name, module in group:
                method = getattr(module, "quant_method", None)
                if method is not None and hasattr(method, "process_weights_after_loading"):
                    method.process_weights_after_loading(module)
                    refreshed.append(name)
    return refreshed


def effective_digests(model: Any) -> dict[str, str]:
    """sha256 of every parameter as the layer uses it: a CPU linear layer's effective matrix, else the data."""
    import torch

    out = {}
    with torch.inference_mode():
        for name, module in model.named_modules():
            for pname, param in module.named_parameters(recurse=False):
                tensor = param
                if pname == "weight" and hasattr(module, "cpu_linear"):
                    tensor = _effective_linear(module, param)
                key = f"{name}.{pname}" if name else pname
                out[key] = tensor_digest(tensor)
    return out


def _effective_linear(module: Any, weight: Any) -> Any:
    """[out, in] matrix the layer multiplies with, read back through its own kernel: cpu_linear(I) = I @ W.T."""
    import torch

    size_in = getattr(module, "input_size_per_partition", None) or weight.shape[-1]
    eye = torch.eye(int(size_in), dtype=weight.dtype)
    return module.cpu_linear(eye, weight, None).t()
