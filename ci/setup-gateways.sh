#!/usr/bin/env bash
# Builds the Go gateways of the built-in targets (harness/targets/cliproxyapi.yaml, gozen.yaml) into
# .gateways/bin/, from the Go module proxy only. Called by `bash ci/setup.sh --gateways` and by
# ci/test.sh (the e2e tests run them).
#
# Idempotent and cached twice:
#   - .gateways/<name>.stamp holds the version built: a second run with the binary present does nothing;
#   - each build is kept in $HARNESS_GATEWAY_CACHE/<name>-<version>/ (default ~/.cache/...), so a fresh
#     clone on the same machine (CI) copies the binary instead of building it again.
#
# A gateway whose module the proxy refuses ("not available") cannot be had on this machine at all:
# that is recorded in .gateways/<name>.unavailable with the proxy's own words, and the setup goes on
# (its e2e test then says why it cannot run). Any other failure (a compile error) fails the setup.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN="$ROOT/.gateways/bin"
CACHE=${HARNESS_GATEWAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-gateway-harness/gateways}
mkdir -p "$BIN" "$CACHE"

# The machine's own Go, never a downloaded toolchain; modules resolved from go.mod files as needed.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
# gosum CMD...: runs a go command; if it failed only because the checksum database (sum.golang.org)
# cannot be reached, runs it once more without it (the proxy is then the only source, as the notes on
# these modules say). Output on stdout, for the caller to read.
gosum() {
  local out
  if out=$("$@" 2>&1); then printf '%s\n' "$out"; return 0; fi
  if grep -q "sum.golang.org\|verifying .*checksum database\|SECURITY ERROR" <<<"$out" && [ "${GOSUMDB:-}" != off ]; then
    echo "ci/setup-gateways.sh: the checksum database cannot be reached; retrying with GOSUMDB=off" >&2
    GOSUMDB=off GONOSUMDB='*' "$@" 2>&1
    return $?
  fi
  printf '%s\n' "$out"
  return 1
}

CPA_VERSION=v7.2.140
GOZEN_VERSION=v3.0.2

fresh() {   # fresh NAME VERSION BINARY: is the binary there, built from this version?
  [ -x "$BIN/$3" ] && [ "$(cat "$ROOT/.gateways/$1.stamp" 2>/dev/null)" = "$2" ]
}

slot() {   # slot NAME KEY: the cache directory of one build recipe
  printf '%s/%s-%s' "$CACHE" "$1" "$(printf '%s' "$2" | tr -c 'A-Za-z0-9._-' '_')"
}

from_cache() {   # from_cache NAME KEY BINARY: copy a build this machine already made
  local c; c="$(slot "$1" "$2")/$3"
  [ -x "$c" ] || return 1
  cp "$c" "$BIN/$3.tmp" && mv "$BIN/$3.tmp" "$BIN/$3"
  echo "$2" >"$ROOT/.gateways/$1.stamp"
  rm -f "$ROOT/.gateways/$1.unavailable"
  echo "ci/setup-gateways.sh: $1 ($2) from the build cache ($c)"
}

keep() {   # keep NAME KEY BINARY: file a fresh build in the cache and stamp it
  local d; d=$(slot "$1" "$2")
  mkdir -p "$d"
  cp "$BIN/$3" "$d/$3.tmp" && mv "$d/$3.tmp" "$d/$3"
  echo "$2" >"$ROOT/.gateways/$1.stamp"
  rm -f "$ROOT/.gateways/$1.unavailable"
}

refused() {   # refused NAME MODULE@VERSION OUTPUT: the proxy said no (not a time-out, not a bug)
  printf '%s\n' "the Go module proxy refuses $2: $(printf '%s' "$3" | grep -m1 -o 'server response: [^"]*' || printf '%s' "$3" | head -c 300)" \
    >"$ROOT/.gateways/$1.unavailable"
  echo "ci/setup-gateways.sh: $1: $(cat "$ROOT/.gateways/$1.unavailable")" >&2
}

# build NAME MODULE VERSION PACKAGE BINARY [EMBED_DIR] [LDFLAGS]: downloads MODULE@VERSION with the go command,
# builds PACKAGE of it in a writable copy (with a placeholder page in EMBED_DIR, for a module that embeds
# a web build it does not commit), files the binary as .gateways/bin/BINARY.
# Not `go install MODULE/PKG@VERSION`: that also asks the proxy for the module's version list (to
# report deprecations), which the proxy here refuses for these modules while it serves the version.
build() {
  local name=$1 module=$2 version=$3 pkg=$4 bin=$5 embed=${6:-} ldflags=${7:-}
  # The stamp and the cache key carry the build recipe too: a changed recipe builds again.
  local key="$version${ldflags:+ ldflags=$ldflags}"
  fresh "$name" "$key" "$bin" && return 0
  from_cache "$name" "$key" "$bin" && return 0
  local t0=$SECONDS out dir src
  echo "ci/setup-gateways.sh: building $name $version from the Go module proxy (a few minutes) ..."
  if ! out=$(cd "$(mktemp -d)" && gosum go mod download -json "$module@$version"); then
    if grep -q "not available\|403 Forbidden\|410 Gone\|invalid version" <<<"$out"; then
      refused "$name" "$module@$version" "$out"
      return 0
    fi
    printf '%s\n' "$out" >&2
    return 1
  fi
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$out")
  src=$(mktemp -d)
  cp -r "$dir/." "$src/" && chmod -R u+w "$src"
  if [ -n "$embed" ]; then
    mkdir -p "$src/$embed"
    echo '<!doctype html><title>placeholder</title><p>Web UI not built (llm-gateway-harness build).' >"$src/$embed/index.html"
  fi
  if ! (cd "$src" && gosum go build -trimpath -ldflags "$ldflags" -o "$BIN/$bin.tmp" "$pkg") >&2; then
    rm -rf "$src"
    echo "ci/setup-gateways.sh: $name $version did not build" >&2
    return 1
  fi
  rm -rf "$src"
  mv "$BIN/$bin.tmp" "$BIN/$bin"
  keep "$name" "$key" "$bin"
  echo "ci/setup-gateways.sh: $name $version built in $((SECONDS - t0))s -> $BIN/$bin"
}

command -v go >/dev/null 2>&1 || { echo "ci/setup-gateways.sh: the go command is missing (Go 1.26 is needed)" >&2; exit 1; }
t0=$SECONDS
# CLIProxyAPI: its server command (upstream's binary `server`; named here as its release builds rename it).
# Its version is set at link time as its release builds do (main.Version), for the report's provenance.
build cliproxyapi github.com/router-for-me/CLIProxyAPI/v7 "$CPA_VERSION" ./cmd/server cliproxyapi "" "-X main.Version=$CPA_VERSION"
# GoZen: the module root, named `zen` as upstream names it (its port takeover logic matches that name);
# `go install` cannot build it: its v3 tags lack /v3 in the module path, and it embeds internal/web/dist.
build gozen github.com/dopejs/gozen "$GOZEN_VERSION" . zen internal/web/dist
echo "ci/setup-gateways.sh: gateways ready in $((SECONDS - t0))s ($(ls "$BIN" | tr '\n' ' '))"
