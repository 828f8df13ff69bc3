#!/usr/bin/env bash
# Install Debian's chromium for the viewer's browser test (tests/view). Idempotent: does nothing
# when /usr/bin/chromium is already there. Needs root (or says what to do); apt only, no downloads
# of browser builds (Playwright's own download does not work on these machines).
# Usage: scripts/install_chromium.sh
set -euo pipefail

log() { echo "[install_chromium] $*" >&2; }

if [ -x /usr/bin/chromium ]; then
  log "ok ($(/usr/bin/chromium --version 2>/dev/null || echo chromium))"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  log "WARNING: not root or no apt-get: install the Debian package 'chromium'; until then the viewer's browser test is skipped"
  exit 0
fi
log "apt-get install chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
  || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
log "ok ($(/usr/bin/chromium --version 2>/dev/null || echo chromium))"
