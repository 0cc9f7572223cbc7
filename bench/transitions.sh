#!/usr/bin/env bash
# What following the TCP tracepoints costs, under connection churn.
#
#   bench/transitions.sh [SECONDS] [RATE]     (root; defaults 30 s, 2000/s)
#
# bench/churn.py makes RATE connections a second on loopback (each accepted
# and reset: 6 state changes and 2 resets per connection, about 16,000
# events a second at 2000/s). Under it, `sockscope diagnose --for SECONDS`
# runs twice, with the transitions off (SOCKSCOPE_NO_TRACE=1) and on, in
# the same run; the figures are the process's CPU share of one core in
# each, the difference, the event source thread's own share, the
# connections it counted against those churn made, and the events the
# kernel dropped (must be 0).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_init
SECS=${1:-30}
RATE=${2:-2000}
build_release
bench_setup

python3 bench/churn.py "$RATE" >"$TMP/churn.out" 2>"$TMP/churn.err" &
CHURN=$!
stop_churn() { kill "$CHURN" 2>/dev/null || true; }
ON_EXIT+=(stop_churn)
for _ in $(seq 100); do grep -q '^ready:' "$TMP/churn.out" && break; sleep 0.1; done
PORT=$(sed -n 's/^ready: port=//p' "$TMP/churn.out")
say "churn at $RATE/s on port $PORT; warming up 3 s"
sleep 3

run() { # run off|on: prints "cpu_share" and leaves $TMP/$1.json
    local mode=$1 env=()
    [[ $mode == off ]] && env=(SOCKSCOPE_NO_TRACE=1)
    /usr/bin/time -f '%U %S' -o "$TMP/$mode.time" env "${env[@]}" \
        "$SOCKSCOPE" diagnose --for "${SECS}s" --json >"$TMP/$mode.json" 2>"$TMP/$mode.err" || true
    tail -n 1 "$TMP/$mode.time" | awk -v s="$SECS" '{ printf "%.2f", ($1 + $2) / s * 100 }'
}
OFF=$(run off)
ON=$(run on)
python3 - "$TMP/on.json" "$PORT" "$SECS" "$RATE" "$OFF" "$ON" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
port, secs, rate, off, on = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
t = doc["transitions"]
assert t["status"] == "on", t
p = next((p for p in t["ports"] if p["port"] == port and p["side"] == "local"), None)
opened = p["opened"] if p else 0
print(f"churn {rate}/s for {secs:.0f} s: events {t['events'] / t['window_s']:.0f}/s, "
      f"connections counted {opened / t['window_s']:.0f}/s on port {port}, dropped {t['dropped']}")
print(f"sockscope diagnose CPU: transitions off {off:.2f}% of a core, on {on:.2f}% "
      f"(difference {on - off:.2f}%); event source thread {t['feed_cpu_s'] / t['window_s'] * 100:.2f}%")
PY
grep churn: "$TMP/churn.err" | tail -1 >&2 || true
