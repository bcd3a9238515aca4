#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh --gateways   # also the Go gateways of the built-in targets, for their e2e tests (cached)
bash ci/setup-browser.sh     # Debian chromium for tests/test_report_browser.py
bash ci/setup-actionlint.sh  # actionlint for tests/test_workflows.py (cached)
exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
