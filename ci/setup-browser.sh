#!/usr/bin/env bash
# Installs Debian's headless-capable `chromium` for the browser tests (tests/test_report_browser.py).
# Idempotent: returns at once when `chromium` is already on PATH. Installs only as root or with
# passwordless sudo; otherwise it says how to install it and exits 0 (the tests then skip outside CI).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "ci/setup-browser.sh: chromium not found; install it with: sudo apt-get install -y --no-install-recommends chromium (browser tests skip without it, fail in CI)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "ci/setup-browser.sh: chromium still missing after apt-get install" >&2; exit 1; }
