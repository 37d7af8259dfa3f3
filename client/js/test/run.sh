#!/usr/bin/env bash
# make test-clients: the JavaScript client's tests, under Node (ws as the
# WebSocket) and in headless Chromium, against the real gateway binary,
# built here once. Needs go, node >= 20, npm, and Chromium (/usr/bin/chromium
# or $CHROMIUM); .ci/run installs them. The Go client's tests run in
# make test with everything else.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ ! -d node_modules/ws ]]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
(cd ../.. && go build -o "$tmp/wsgate" ./cmd/gateway)
WSGATE_BIN="$tmp/wsgate" node --test --test-concurrency=1 test/node.test.mjs test/chromium.test.mjs
