#!/usr/bin/env bash
# The whole test suite, as the README's quick start and CI run it:
#   1. `cargo test --workspace` (the server and the load harness; extra arguments go to it);
#   2. the server binary (the debug build step 1 made; HUDDLE_NODE_PROFILE=release for an optimised
#      one), then every Node suite in NODE_SUITES against it (each a
#      folder with a package.json and a package-lock.json: `npm ci --ignore-scripts`, then its
#      `npm test`, Node's own test runner). The suites start the binary themselves from $HUDDLE_BIN.
# Each step prints how long it took. Needs Node.js 20+ with npm for step 2; HUDDLE_SKIP_NODE=1
# runs step 1 alone.
#
# To add a Node suite, append its folder to NODE_SUITES.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_SUITES=(
  clients/ts        # the TypeScript client (SPEC K-2) against the real server
  tests/nakama-js   # the official Nakama JavaScript SDK in huddle's Nakama JSON mode (SPEC K-1)
)

timed() {
  local what=$1 start=$SECONDS
  shift
  echo "--- ${what}"
  "$@"
  echo "--- ${what}: $((SECONDS - start)) s"
}

timed "cargo test" cargo test --workspace "$@"

if [ "${HUDDLE_SKIP_NODE:-}" = 1 ]; then
  echo "--- Node suites skipped (HUDDLE_SKIP_NODE=1)"
  exit 0
fi
node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || true)
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
  echo "scripts/test-all.sh: the Node suites need Node.js 20+ and npm, found $(node --version 2>/dev/null || echo none) (or set HUDDLE_SKIP_NODE=1)" >&2
  exit 1
fi

# The Node suites test behaviour, not speed: the debug binary `cargo test` just built serves them
# (no second, release build); HUDDLE_NODE_PROFILE=release picks the optimised one.
profile="${HUDDLE_NODE_PROFILE:-debug}"
if [ "$profile" = release ]; then
  timed "cargo build --release (the binary the Node suites drive)" cargo build --release -p huddle --bin huddle
else
  timed "cargo build (the binary the Node suites drive)" cargo build -p huddle --bin huddle
fi
export HUDDLE_BIN="${HUDDLE_BIN:-$(realpath "${CARGO_TARGET_DIR:-target}")/$profile/huddle}"

run_suite() {
  local suite=$1
  # --ignore-scripts: no package's install script runs (nakama-js pulls in one that phones home).
  (cd "$suite" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm test)
}

node_start=$SECONDS
for suite in "${NODE_SUITES[@]}"; do
  timed "node suite ${suite}" run_suite "$suite"
done
echo "--- Node suites: $((SECONDS - node_start)) s in all"
