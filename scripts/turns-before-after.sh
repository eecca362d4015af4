#!/usr/bin/env bash
# Loop-turn durations and latency with mid-turn flushing off (--flush-batch-bytes 0: replies and
# events wait for the turn's end, as before issue 15) and on (the default, 8 KiB per waiting
# connection), at the same fan-out load: the server's huddle_loop_turn_seconds histogram, read
# from its admin API after each run, and the harness's latency. One server per setting, pinned
# to CPU 0, the harness on CPU 1, on ports of their own (17350/17351). Take it on a quiet machine.
#
# Usage: scripts/turns-before-after.sh [sent-per-second [seconds [connections]]]
#        (default 200000 8 1000: parties of 4, so 600,000 deliveries/s)
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-200000}
duration=${2:-8}
connections=${3:-1000}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release
export HUDDLE_TOKEN_KEY=turns-before-after-key-0123456789abcdef
admin_key=turns-before-after-admin
for flush in 0 8192; do
  "$bin/huddle" --cpu 0 --listen 127.0.0.1:17350 --admin-listen 127.0.0.1:17351 --admin-key "$admin_key" \
    --requests-per-second-max 10000000 --requests-burst-max 10000000 --flush-batch-bytes "$flush" \
    >/dev/null 2>&1 &
  server=$!
  sleep 0.5
  report=$(taskset -c 1 "$bin/huddle-load" fanout --url ws://127.0.0.1:17350/ws --server-pid "$server" \
    --server-rps-max 10000000 --quiet --json --connections "$connections" --party-size 4 \
    --rate "$rate" --duration "$duration" --warmup 2 2>/dev/null)
  metrics=$(curl -s -H "Authorization: Bearer $admin_key" http://127.0.0.1:17351/metrics)
  kill "$server"
  wait "$server" 2>/dev/null || true
  echo "== --flush-batch-bytes $flush"
  echo "$report" | python3 -c '
import json, sys
r = json.load(sys.stdin)
l = r["latency_us"]
print("delivered/s %.0f  latency p50 %.0f µs  p99 %.0f µs  max %.0f µs  harness bound: %s"
      % (r["delivered_per_sec"], l["p50"], l["p99"], l["max"], r["harness"]["bound"]))'
  echo "$metrics" | python3 -c '
import sys
buckets, count = [], 0
for line in sys.stdin:
    if line.startswith("huddle_loop_turn_seconds_bucket"):
        le = line.split("le=\"")[1].split("\"")[0]
        buckets.append((le, int(float(line.split()[-1]))))
    elif line.startswith("huddle_loop_turn_seconds_count"):
        count = int(float(line.split()[-1]))
print(f"loop turns (whole run, setup included): {count}")
below = 0
for le, n in buckets:
    share = 100.0 * (n - below) / count if count else 0.0
    print(f"  turns <= {le:>8} s: {n:>9}  (+{share:5.1f} %)")
    below = n'
done
