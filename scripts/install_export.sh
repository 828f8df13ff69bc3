#!/usr/bin/env bash
# Exports and non-JSONL datasets: pyarrow (Parquet, verl/TRL tables) and Hugging Face `datasets`.
# Idempotent: installs only what is missing, pinned. Run inside the project venv.
set -euo pipefail
PY="${PYTHON:-python}"
if "$PY" -c "import pyarrow, datasets" 2>/dev/null; then
  echo "install_export: pyarrow and datasets already installed"
  exit 0
fi
"$PY" -m pip install --quiet "pyarrow==26.0.1" "datasets==5.2.0"
"$PY" -c "import pyarrow, datasets; print('install_export: pyarrow', pyarrow.__version__, 'datasets', datasets.__version__)"
