#!/usr/bin/env bash
# sockscope recording-size benchmark.
#
#   sudo bench/record.sh [SECONDS]      (default 600; takes about 2 min + SECONDS)
#
# Holds ~130k TCP sockets with examples/loadgen, about 1% of which change
# every second, and records them with `sockscope record --interval 1s` (release
# build) for SECONDS. The load (LOADGEN_ARGS, default
# "--established 40000 --close-wait 10000 --time-wait 40000"):
#
#   80k ESTABLISHED ends, 10k CLOSE_WAIT and their 10k orphaned FIN_WAIT2
#   (tcp_fin_timeout is raised for the run so they stay), and ~40k TIME_WAIT
#   that the churner replaces as the kernel drops them, 60 s after they were
#   made: ~670 new sockets and ~670 gone every second, 1% of the table.
#
# It starts recording 65 s after loadgen is ready, so that the churner's first
# burst of TIME_WAIT has expired and is being replaced (steady state). It
# prints the recorder's own summary (frames, key frames, bytes, bytes per
# hour, sockets per frame and how many changed), its CPU time and peak RSS
# (GNU time), and then the time `snapshot --from` takes to read the middle of
# the recording, against a live `snapshot`.
#
# Environment: LOADGEN_ARGS, CARGO_TARGET_DIR (honoured, as by cargo).
set -euo pipefail

WINDOW=${1:-600}
LOADGEN_ARGS=${LOADGEN_ARGS:---established 40000 --close-wait 10000 --time-wait 40000}
if ! [[ $WINDOW =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS]   (a positive integer, default 600)" >&2
    exit 2
fi
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
bench_init
install_missing /usr/bin/time=time
build_release
bench_setup
set_sysctl net.ipv4.tcp_fin_timeout $((WINDOW + 900))

start_loadgen "$LOADGEN_ARGS"
say "waiting 65 s for the TIME_WAIT churn to reach steady state"
sleep 65
say "$(tcp_total) TCP sockets on the machine; recording for $WINDOW s"

REC=$TMP/bench.rec
/usr/bin/time -f '%U %S %M' -o "$TMP/time" \
    "$SOCKSCOPE" record "$REC" --interval 1s --duration "$WINDOW" 2>"$TMP/record.err"
read -r user sys rss_kb <"$TMP/time"
grep '^sockscope:' "$TMP/record.err" | sed 's/^/  /'
size=$(stat -c %s "$REC")
python3 - "$size" "$WINDOW" "$user" "$sys" "$rss_kb" <<'EOF'
import sys
size, window, user, sys_, rss = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
print(f"  file: {size / 1e6:.1f} MB over {window} s = {size * 3600 / window / 1e6:.1f} MB/hour (target <= 100 MB/hour)")
print(f"  recorder CPU: {100 * (user + sys_) / window:.1f}% of a core; peak RSS {rss / 1024:.1f} MiB")
EOF

mid=$((WINDOW / 2))
t0=$EPOCHREALTIME
"$SOCKSCOPE" snapshot --from "$REC" --at "$mid" --json >"$TMP/from.json"
t1=$EPOCHREALTIME
"$SOCKSCOPE" snapshot --json >"$TMP/live.json"
t2=$EPOCHREALTIME
python3 - "$t0" "$t1" "$t2" "$TMP/from.json" <<'EOF'
import json, sys
t0, t1, t2 = map(float, sys.argv[1:4])
n = len(json.load(open(sys.argv[4])))
print(f"  snapshot --from --at middle: {t1 - t0:.3f} s for {n} sockets; live snapshot: {t2 - t1:.3f} s")
EOF
