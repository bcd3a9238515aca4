#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the tests need, then runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh --gateways   # also the Go gateways of the built-in targets, for their e2e tests (cached)
bash ci/setup-browser.sh     # Debian chromium for tests/test_report_browser.py
bash ci/setup-actionlint.sh  # actionlint for tests/test_workflows.py (cached)
# Two steps: the tests that start real gateways (marker e2e) never share the two cores with the
# timing-sensitive ones. Either failing fails the run; a step that selects nothing is no failure.
status=0
.venv/bin/python -m pytest -n 2 -p no:cacheprovider --durations=15 -m "not e2e" "$@" || status=$?
[ "$status" -eq 5 ] && status=0
e2e=0
# --dist loadfile: a module's tests share its fixture's gateway and run (the full LiteLLM run is ~4.5 min);
# spread test by test, each worker ran that fixture once, the same run twice at once.
.venv/bin/python -m pytest -n 2 -p no:cacheprovider --durations=15 --dist loadfile -m e2e "$@" || e2e=$?
[ "$e2e" -eq 5 ] && e2e=0
[ "$status" -ne 0 ] && exit "$status"
exit "$e2e"
