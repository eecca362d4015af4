#!/usr/bin/env bash
# Instructions the server's user-space code spends per delivered party-data message, counted by
# callgrind (deterministic, unlike wall-clock time on a shared machine): the driver over
# in-memory sockets (`benches/alloc_party_data.rs`, `huddle::benching`), only the measured
# rounds counted. Usage: scripts/callgrind-delivery.sh [combination ...] (default: all eight;
# names as the bench prints them, e.g. party4-acked-one). Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
combinations=("$@")
if [ ${#combinations[@]} -eq 0 ]; then
  combinations=(party4-acked-one party4-acked-all party4-fire-one party4-fire-all
                party64-acked-one party64-acked-all party64-fire-one party64-fire-all)
fi
cargo bench --bench alloc_party_data --no-run 2>/dev/null
bench=$(cargo bench --bench alloc_party_data --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys; print([j["executable"] for j in map(json.loads, sys.stdin) if j.get("executable") and "alloc_party_data" in j["executable"]][0])')
out=$(mktemp -d)
printf '%-20s %14s %12s %16s\n' combination instructions deliveries "instr./delivery"
for c in "${combinations[@]}"; do
  valgrind --tool=callgrind --callgrind-out-file="$out/$c.cg" \
    --toggle-collect='huddle::benching::PartyFanout::measured_rounds' \
    "$bench" --only "$c" --report >"$out/$c.txt" 2>"$out/$c.log"
  deliveries=$(awk -v c="$c" '$1 == c {print $4}' "$out/$c.txt")
  instructions=$(awk '/^summary:/ {print $2}' "$out/$c.cg")
  printf '%-20s %14s %12s %16.0f\n' "$c" "$instructions" "$deliveries" "$(echo "$instructions / $deliveries" | bc -l)"
done
echo "(callgrind output in $out)"
