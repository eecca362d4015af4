#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each) on the stable toolchain and
# fails on any crash. New corpus entries go to a scratch folder, so the committed seeds only
# change on purpose. A crash input is kept under fuzz/artifacts/<target>/: copy it to
# fuzz/regressions/<target>/ so `cargo test` replays it from then on. A target with a
# fuzz/<target>.dict (nakama_json: the JSON envelope's keys) runs with that libFuzzer dictionary.
#   fuzz/run.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1   # cargo-fuzz's sanitizer flags need it on a stable toolchain
targets=$(cargo fuzz list)
cargo fuzz build -O
for target in $targets; do
  scratch=$(mktemp -d)
  mkdir -p "corpus/$target" "regressions/$target"
  dict=()
  if [ -f "$target.dict" ]; then dict=("-dict=$target.dict"); fi
  echo "--- fuzzing $target for ${seconds}s"
  log="$scratch.log"
  set +e
  # -timeout: one input stuck that long is a hang (a failure); max_total_time cannot stop it,
  # so the outer timeout bounds the whole target whatever happens.
  timeout $((seconds + 180)) cargo fuzz run -O "$target" "$scratch" "corpus/$target" "regressions/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 ${dict[@]+"${dict[@]}"} >"$log" 2>&1
  status=$?
  set -e
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)|ERROR|SUMMARY|panicked|Test unit written' "$log" || true
  if [ "$status" -ne 0 ]; then tail -n 40 "$log"; fi
  rm -f "$log"
  rm -rf "$scratch"
  if [ "$status" -ne 0 ]; then
    echo "fuzz target $target failed (exit $status); see fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
