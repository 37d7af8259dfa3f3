#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME (default 10s) each. Interesting inputs
# the fuzzer finds land in the package's testdata/fuzz and then run as part
# of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "== $pkg $target"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"
  done
done
