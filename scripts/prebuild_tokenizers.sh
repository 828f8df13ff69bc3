#!/usr/bin/env bash
# Build every registered tokenizer once into the agentroll cache ($AGENTROLL_CACHE_DIR,
# default ~/.cache/agentroll/tokenizers) so the first rollout does not pay for it.
# Idempotent: an already-cached tokenizer is only read back. Offline: nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
"$PY" - <<'PYEOF'
import time

from agentroll.renderers.tokenizers import REGISTRY, cache_dir, load_tokenizer

for name in REGISTRY:
    start = time.perf_counter()
    tok = load_tokenizer(name)
    print(f"tokenizer {name:12s} {len(tok):7d} ids  {time.perf_counter() - start:5.2f}s")
print(f"cache: {cache_dir()}")
PYEOF
