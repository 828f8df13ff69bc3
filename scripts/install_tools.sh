#!/usr/bin/env bash
# Install what the tools layer (src/agentroll/tools) and its tests need. Idempotent: each
# step checks first and does nothing when it is already done.
#   - Python: the MCP SDK, the time MCP server (tests, example), docstring-parser
#   - npm: @modelcontextprotocol/server-filesystem into .cache/npm (project-local, gitignored)
#   - Debian: bubblewrap for the `python` tool's sandbox (only as root; otherwise says what to do)
# Usage: scripts/install_tools.sh [PYTHON]   (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${PYTHON:-.venv/bin/python}}

PIP_PINS=("mcp==2.3.0" "mcp-server-time==2026.10.19" "docstring-parser==0.18.0")
FS_PKG="@modelcontextprotocol/server-filesystem"
FS_VERSION="2026.8.31"
NPM_DIR=.cache/npm

log() { echo "[install_tools] $*" >&2; }

# 1. Python packages (pip only runs when a pin is not met).
if ! "$PY" scripts/pins_met.py "${PIP_PINS[@]}"; then
  log "pip install ${PIP_PINS[*]}"
  "$PY" -m pip install -q --no-warn-conflicts "${PIP_PINS[@]}"
fi

# 2. The npm filesystem MCP server, pinned, into a project-local prefix.
installed=$(node -p "require('./$NPM_DIR/node_modules/$FS_PKG/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$FS_VERSION" ]; then
  if command -v npm >/dev/null; then
    log "npm install $FS_PKG@$FS_VERSION into $NPM_DIR"
    mkdir -p "$NPM_DIR"
    npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error "$FS_PKG@$FS_VERSION" >/dev/null
  else
    log "WARNING: npm not found; the filesystem MCP server tests will be skipped (install nodejs + npm)"
  fi
fi

# 3. bubblewrap (plus prlimit/setpriv from util-linux, present on Debian) for the sandbox.
if ! command -v bwrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "apt-get install bubblewrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null; }
  else
    log "WARNING: bwrap not found and not root: install bubblewrap; until then the python tool fails closed"
  fi
fi
for tool in prlimit setpriv; do
  command -v "$tool" >/dev/null || log "WARNING: $tool not found (util-linux); the python tool will fail closed"
done
log "ok"
