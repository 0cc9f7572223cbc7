#!/usr/bin/env bash
# Instructions, not seconds: how much a change costs, measured the same way
# however busy the machine is.
#
#   sudo bench/instructions.sh BASELINE [LOADGEN_ARGS]
#
# BASELINE is another sockscope binary (say, the previous commit's release
# build). Holds a load with examples/loadgen (default about 26k TCP sockets:
# "--established 10000 --close-wait 2000 --time-wait 2000 --workers 4"), then
# runs each of
#
#   snapshot --json          one collection and the JSON of every socket
#   diagnose --for 0 --json  one sample through the history and the
#                            findings engine, as the monitor digests each
#
# under `valgrind --tool=callgrind` for BASELINE and for this tree's build,
# alternately, ROUNDS times (default 2), and prints the instructions each
# executed in user space (callgrind's Ir) and the ratio. The socket table is
# the same load for both, but not the same sockets to the byte (TIME_WAIT
# churns), so expect a few tenths of a percent of noise. The time spent in
# the kernel (the netlink dump, reading /proc) is not counted: it is the same
# code for both.
#
# Needs root and valgrind (installed with apt-get if missing).
set -euo pipefail

BASELINE=${1:?usage: $0 BASELINE [LOADGEN_ARGS]}
LOADGEN_ARGS=${2:---established 10000 --close-wait 2000 --time-wait 2000 --workers 4}
ROUNDS=${ROUNDS:-2}
[[ -x $BASELINE ]] || { echo "BASELINE=$BASELINE is not an executable" >&2; exit 2; }

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
bench_init
install_missing valgrind=valgrind python3=python3
build_release
bench_setup
start_loadgen "$LOADGEN_ARGS"

# ir BINARY ARGS...: user-space instructions of one run.
# A run that fails (a crash under valgrind, an error) stops the bench: its
# count would be that of a program that did not do the work. `diagnose`
# exits 1 when it finds something at warning level, which is a success here.
ir() {
    local out=$TMP/callgrind.out rc=0
    rm -f "$out"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>"$TMP/valgrind.log" || rc=$?
    if ((rc != 0)) && ! [[ $rc == 1 && " $* " == *" diagnose "* ]]; then
        say "$* exited with $rc under valgrind:"
        tail -20 "$TMP/valgrind.log" >&2
        exit 1
    fi
    grep -m1 '^summary:' "$out" | awk '{print $2}'
}

: >"$TMP/results.tsv"
for ((r = 0; r < ROUNDS; r++)); do
    say "round $((r + 1))/$ROUNDS"
    for cmd in "snapshot --json" "diagnose --for 0 --json"; do
        # shellcheck disable=SC2086 # cmd is a list of arguments
        printf 'baseline\t%s\t%s\n' "$cmd" "$(ir "$BASELINE" $cmd)" >>"$TMP/results.tsv"
        # shellcheck disable=SC2086
        printf 'this\t%s\t%s\n' "$cmd" "$(ir "$SOCKSCOPE" $cmd)" >>"$TMP/results.tsv"
    done
done

export READY
python3 - "$TMP/results.tsv" <<'PY'
import collections, os, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    who, cmd, ir = line.rstrip("\n").split("\t")
    if ir:
        runs[(who, cmd)].append(int(ir))
print()
print(f"load: {os.environ['READY']}")
print(f"{'command':<26} {'baseline Ir':>15} {'this Ir':>15} {'this/baseline':>14}")
for cmd in ["snapshot --json", "diagnose --for 0 --json"]:
    b = statistics.median(runs[("baseline", cmd)])
    t = statistics.median(runs[("this", cmd)])
    print(f"{cmd:<26} {b:>15,.0f} {t:>15,.0f} {t / b:>14.3f}")
print("Ir: instructions executed in user space (valgrind --tool=callgrind), median of the rounds")
PY
