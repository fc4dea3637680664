#!/usr/bin/env bash
# Runs the kurento-client (npm) test suite against the Go server.
#
#   test/node/run.sh                         # all test files
#   test/node/run.sh test/04-connections.test.js   # some files (paths relative to test/node)
#
# Env: KMS_BIN=<path>  use this server binary instead of building ./cmd/kurento-media-server
#      NODE_TEST_TIMEOUT=<ms>  per-test timeout (default 120000)
#      KMS_CLUSTER=1  each test file talks to a cluster instead: redis-server, two media nodes and a
#                     router in front of them (lib/kms.js, docs/CLUSTER.md)
# Exit status is non-zero when installing, building or any test fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

# 1. Dependencies: `npm ci` from the committed lock file when node_modules is missing or
#    was installed from another lock file. (.npmrc sets ignore-scripts=true.)
stamp="node_modules/.kms-lock-sha256"
want="$(sha256sum package-lock.json package.json .npmrc | sha256sum | cut -d' ' -f1)"
if [[ ! -d node_modules || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "run.sh: npm ci" >&2
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

# 2. Server binary: build once for all test files (each file starts its own server).
tmp=""
cleanup() { if [[ -n "$tmp" ]]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT
if [[ -z "${KMS_BIN:-}" ]]; then
  tmp="$(mktemp -d)"
  echo "run.sh: go build ./cmd/kurento-media-server" >&2
  (cd "$repo" && go build -o "$tmp/kurento-media-server" ./cmd/kurento-media-server)
  export KMS_BIN="$tmp/kurento-media-server"
fi

# 3. Tests. preload.js clears require('domain').Domain before kurento-client is loaded
#    (needed for its transactions on Node 20).
if [[ $# -gt 0 ]]; then files=("$@"); else files=(test/*.test.js); fi
status=0
node -r ./preload.js --test --test-reporter=spec --test-force-exit \
  --test-timeout="${NODE_TEST_TIMEOUT:-120000}" "${files[@]}" || status=$?
exit "$status"
