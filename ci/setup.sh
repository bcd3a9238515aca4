#!/usr/bin/env bash
# Creates .venv and installs the harness with the embedded default gateway (LiteLLM proxy)
# and the test tools. Idempotent: a second run only re-checks the installed set.
# --gateways: also builds the Go gateways of the built-in targets (ci/setup-gateways.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.harness-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ ci/constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  # ci/constraints.txt: the LiteLLM whose findings the self-tests pin (the harness accepts others).
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c ci/constraints.txt -e '.[proxy,chaos,load,dev]'
  touch "$stamp"
fi
if [ "${1:-}" = "--gateways" ]; then
  bash ci/setup-gateways.sh
fi
