#!/usr/bin/env bash
# Installs actionlint (the GitHub Actions workflow linter) into .tools/bin from the Go module proxy,
# for tests/test_workflows.py, which lints every workflow template in ci/workflows. Cached: once
# the pinned version is there, this does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=v1.7.12
BIN=.tools/bin
if [ -x "$BIN/actionlint" ] && [ "$(cat "$BIN/.actionlint-version" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "ci/setup-actionlint.sh: no Go toolchain; install Go to lint the workflow templates" >&2
  exit 0
fi
mkdir -p "$BIN"
GOBIN="$PWD/$BIN" GOFLAGS=-mod=mod GOTOOLCHAIN=local go install "github.com/rhysd/actionlint/cmd/actionlint@$VERSION"
echo "$VERSION" > "$BIN/.actionlint-version"
