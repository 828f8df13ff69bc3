#!/usr/bin/env bash
# Make the Mistral and gpt-oss (harmony) renderers work offline on a fresh machine. Idempotent.
#
#   scripts/setup_mistral_harmony.sh [PYTHON]      (default: .venv/bin/python of this repo)
#
# 1. mistral-common reads its SentencePiece tokenizers (mistral-v3, mistral-v7) only with the
#    `sentencepiece` extra; Tekken (mistral-v3-tekken) needs nothing more.
# 2. openai-harmony (the reference the tests use, and what users load with
#    TIKTOKEN_ENCODINGS_BASE) needs o200k_base.tiktoken; we rebuild it from quicktok-v1's
#    ranks into $AGENTROLL_CACHE_DIR/tiktoken (default ~/.cache/agentroll/tiktoken) and
#    check it against tiktoken's published sha256. Nothing is downloaded.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${1:-$ROOT/.venv/bin/python}

if ! "$PY" -c "import sentencepiece" 2>/dev/null; then
  "$PY" -m pip install --quiet --no-warn-conflicts "sentencepiece==0.2.3"
fi
"$PY" - <<'PY'
from agentroll.renderers.harmony import o200k_tiktoken_dir
from agentroll.renderers.mistral import load_tokenizer

for version in ("v3", "v3-tekken", "v7"):
    load_tokenizer(version)
print(f"o200k_base.tiktoken ready in {o200k_tiktoken_dir()} (export TIKTOKEN_ENCODINGS_BASE=that folder)")
PY
