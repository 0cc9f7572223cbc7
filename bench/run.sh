#!/usr/bin/env bash
# sockscope performance benchmark.
#
#   sudo bench/run.sh [ROUNDS]        (default 5 rounds)
#
# Holds ~133k real TCP sockets on loopback with examples/loadgen (50k
# ESTABLISHED connections = 100k sockets, 10k CLOSE_WAIT, ~10k TIME_WAIT kept
# up by churning short connections, over 8 worker processes), then times
#
#   sockscope snapshot --json    sockscope diagnose --for 0 --json
#   ss -tanp    ss -tan    lsof -nPi    netstat -tanp
#
# on those same sockets, one after the other in each round (the order rotates
# from round to round), and prints the median wall time of each, its ratio to
# `ss -tanp`, and peak RSS. Before the timed rounds it pauses the TIME_WAIT
# churn, takes `sockscope snapshot --json` and `ss -tanp` back to back, and
# compares what they saw: TCP sockets per state, sockets with at least one
# owning process, and distinct (pid, fd) owners.
#
# Needs root (sysctls, and reading every process's fd table). Installs with
# apt-get, saying so, whichever of time, lsof, iproute2, net-tools, python3 is
# missing. Raises net.core.somaxconn, net.ipv4.tcp_max_syn_backlog and
# net.ipv4.ip_local_port_range for the run and restores them on exit.
#
# Environment:
#   NETSTAT_ROUNDS  rounds that include netstat -tanp, the slowest (default 2; 0 = skip)
#   LOADGEN_ARGS    extra loadgen arguments, e.g. "--established 20000 --workers 4"
#   CARGO_TARGET_DIR  honoured, as by cargo
#   BASELINE        another sockscope binary (say, the previous commit's
#                   release build) timed in the same rounds as
#                   "baseline snapshot --json" and "baseline diagnose --for 0",
#                   so that a change is measured against what it changes
#
# The setup (tools, build, sysctls, loadgen) is in bench/lib.sh, shared with
# bench/monitor.sh.
set -euo pipefail

ROUNDS=${1:-5}
NETSTAT_ROUNDS=${NETSTAT_ROUNDS:-2}
LOADGEN_ARGS=${LOADGEN_ARGS:-}
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [ROUNDS]   (ROUNDS: a positive integer, default 5)" >&2
    exit 2
fi
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
bench_init
install_missing /usr/bin/time=time lsof=lsof ss=iproute2 netstat=net-tools python3=python3
build_release
bench_setup

# --- load --------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
start_loadgen "$LOADGEN_ARGS"

# --- counts ------------------------------------------------------------------
# Right after setup nothing of ours is due to expire (TIME_WAIT and the
# orphaned FIN_WAIT2 sockets last 60 s), and with the churn paused the held
# sockets cannot change between the two reads.
say "counting: churn paused, sockscope snapshot --json and ss -tanp back to back"
kill -USR1 "$LG_PID"
sleep 0.5
"$SOCKSCOPE" snapshot --json >"$TMP/sockscope.json" 2>>"$TMP/stderr.log"
ss -tanp >"$TMP/ss.txt"
kill -USR2 "$LG_PID"
say "diagnose over the default 2 s window, for the report"
"$SOCKSCOPE" diagnose >"$TMP/diagnose.txt" 2>>"$TMP/stderr.log" || true

# --- timing ------------------------------------------------------------------
NAMES=("sockscope snapshot --json" "ss -tanp" "ss -tan" "lsof -nPi" "netstat -tanp" "sockscope diagnose --for 0")
BASELINE=${BASELINE:-}
if [[ -n $BASELINE ]]; then
    [[ -x $BASELINE ]] || { say "BASELINE=$BASELINE is not an executable"; exit 2; }
    NAMES+=("baseline snapshot --json" "baseline diagnose --for 0")
fi
# tool_cmd INDEX: sets CMD to the command line of tool INDEX.
tool_cmd() {
    case $1 in
    0) CMD=("$SOCKSCOPE" snapshot --json) ;;
    1) CMD=(ss -tanp) ;;
    2) CMD=(ss -tan) ;;
    3) CMD=(lsof -nPi) ;;
    4) CMD=(netstat -tanp) ;;
    5) CMD=("$SOCKSCOPE" diagnose --for 0 --json) ;;
    6) CMD=("$BASELINE" snapshot --json) ;;
    7) CMD=("$BASELINE" diagnose --for 0 --json) ;;
    esac
}

# run_one INDEX: one timed run; appends
# "name<TAB>wall_us<TAB>maxrss_kib<TAB>user_s<TAB>sys_s" to results.tsv.
run_one() {
    local name=${NAMES[$1]} t0 t1 rss user sys status=0
    tool_cmd "$1"
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%M %U %S' -o "$TMP/time" "${CMD[@]}" >/dev/null 2>>"$TMP/stderr.log" || status=$?
    t1=$EPOCHREALTIME
    # diagnose exits 1 when it finds something at warning level or worse.
    if ((status != 0)) && ! (((${1} == 5 || ${1} == 7) && status == 1)); then
        say "warning: $name exited with status $status"
    fi
    read -r rss user sys < <(tail -n 1 "$TMP/time")
    printf '%s\t%d\t%s\t%s\t%s\n' "$name" $((${t1//[.,]/} - ${t0//[.,]/})) "$rss" "$user" "$sys" \
        >>"$TMP/results.tsv"
}

say "warm-up: one untimed run of each tool but netstat"
for i in 0 1 2 3 5 ${BASELINE:+6 7}; do
    tool_cmd "$i"
    "${CMD[@]}" >/dev/null 2>&1 || true
done
BUSY_BEFORE=$(cpu_busy)
: >"$TMP/results.tsv"
for ((r = 0; r < ROUNDS; r++)); do
    order=()
    for ((k = 0; k < ${#NAMES[@]}; k++)); do
        i=$(((k + r) % ${#NAMES[@]}))
        if ((i == 4 && r >= NETSTAT_ROUNDS)); then continue; fi
        order+=("$i")
    done
    say "round $((r + 1))/$ROUNDS"
    for i in "${order[@]}"; do
        tcp_total >>"$TMP/totals"
        run_one "$i"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_AFTER=$(cpu_busy)

# --- report ------------------------------------------------------------------
export READY LOAD_BEFORE LOAD_AFTER BUSY_BEFORE BUSY_AFTER ROUNDS NETSTAT_ROUNDS
python3 - "$TMP" <<'PY'
import collections, json, os, re, statistics, sys

tmp = sys.argv[1]
runs = collections.defaultdict(list)
cpu = collections.defaultdict(list)
for line in open(f"{tmp}/results.tsv"):
    name, us, rss, user, sys_ = line.rstrip("\n").split("\t")
    runs[name].append((int(us) / 1e6, int(rss) / 1024))
    cpu[name].append(float(user) + float(sys_))
totals = [int(l) for l in open(f"{tmp}/totals") if l.strip()]

uname = os.uname()
print()
print(f"sockscope benchmark: {uname.sysname} {uname.release}, {os.cpu_count()} CPUs, "
      f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
      f"{os.environ['ROUNDS']} rounds (netstat: {min(int(os.environ['NETSTAT_ROUNDS']), int(os.environ['ROUNDS']))})")
print(f"load:  {os.environ['READY']}")
print(f"load average before: {os.environ['LOAD_BEFORE']}   after: {os.environ['LOAD_AFTER']};   "
      f"CPU busy with other work in 2 s just before the timed runs: {os.environ['BUSY_BEFORE']}%, "
      f"just after: {os.environ['BUSY_AFTER']}%")
print()

ref = statistics.median(t for t, _ in runs["ss -tanp"]) if runs.get("ss -tanp") else None

def ratio(m):
    if not ref:
        return "-"
    r = m / ref
    return f"{r:.3f} (1/{1 / r:.0f})" if r < 0.995 else f"{r:.2f}"

print(f"{'tool':<27} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7}  {'vs ss -tanp':<13} {'peak RSS MiB':>12} {'CPU s':>6}")
order = ["sockscope snapshot --json", "baseline snapshot --json", "sockscope diagnose --for 0",
         "baseline diagnose --for 0", "ss -tanp", "ss -tan", "lsof -nPi", "netstat -tanp"]
for name in order:
    if name not in runs:
        continue
    ts = [t for t, _ in runs[name]]
    rss = max(m for _, m in runs[name])
    m = statistics.median(ts)
    c = statistics.median(cpu[name])
    print(f"{name:<27} {len(ts):>4} {m:>9.3f} {min(ts):>7.3f} {max(ts):>7.3f}  {ratio(m):<13} {rss:>12.1f} {c:>6.2f}")
for this, base in [("sockscope snapshot --json", "baseline snapshot --json"),
                   ("sockscope diagnose --for 0", "baseline diagnose --for 0")]:
    if runs.get(this) and runs.get(base):
        a = statistics.median(t for t, _ in runs[this])
        b = statistics.median(t for t, _ in runs[base])
        print(f"{this} / {base}: {a / b:.3f}")
print("wall time: bash's EPOCHREALTIME around /usr/bin/time; peak RSS: /usr/bin/time's %M, highest of the runs;")
print("CPU s: median user + system time (sockscope uses several threads, so it can exceed wall time)")
if totals:
    print(f"TCP sockets on the machine during the timed runs (sockstat inuse + tw): {min(totals)} .. {max(totals)}")

# What each tool saw, taken back to back with the TIME_WAIT churn paused.
ready = os.environ["READY"]
lg_pids = set()
m = re.search(r"\bpid=(\d+)", ready)
if m:
    lg_pids.add(int(m.group(1)))
m = re.search(r"\bchildren=([\d,]+)", ready)
if m:
    lg_pids.update(int(p) for p in m.group(1).split(","))

def tally():
    return {"states": collections.Counter(), "total": 0, "held": 0, "pairs": set(),
            "lg_held": 0, "lg_pairs": set()}

sc = tally()
for s in json.load(open(f"{tmp}/sockscope.json")):
    if s["proto"] != "tcp":
        continue
    sc["total"] += 1
    sc["states"][s["state"]] += 1
    owners = [(o["pid"], o["fd"]) for o in s["owners"]]
    if owners:
        sc["held"] += 1
        sc["pairs"].update(owners)
    lg = [o for o in owners if o[0] in lg_pids]
    if lg:
        sc["lg_held"] += 1
        sc["lg_pairs"].update(lg)

SS_STATES = {"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV",
             "FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2", "TIME-WAIT": "TIME_WAIT",
             "UNCONN": "CLOSE", "CLOSE-WAIT": "CLOSE_WAIT", "LAST-ACK": "LAST_ACK",
             "LISTEN": "LISTEN", "CLOSING": "CLOSING"}
owner_re = re.compile(r"pid=(\d+),fd=(\d+)")
ss = tally()
with open(f"{tmp}/ss.txt") as f:
    next(f)  # header
    for line in f:
        if not line.strip():
            continue
        state = line.split(None, 1)[0]
        ss["total"] += 1
        ss["states"][SS_STATES.get(state, state)] += 1
        owners = [(int(p), int(d)) for p, d in owner_re.findall(line)]
        if owners:
            ss["held"] += 1
            ss["pairs"].update(owners)
        lg = [o for o in owners if o[0] in lg_pids]
        if lg:
            ss["lg_held"] += 1
            ss["lg_pairs"].update(lg)

print()
print("what each saw, right after setup (TIME_WAIT churn paused; sockscope snapshot --json, then ss -tanp):")
print(f"{'':<40} {'sockscope':>10} {'ss -tanp':>10}")
def row(label, a, b, must_match):
    mark = ("same" if a == b else "DIFFERENT") if must_match else ("" if a == b else f"({a - b:+d})")
    print(f"{label:<40} {a:>10} {b:>10}  {mark}")
    return a == b
row("TCP sockets", sc["total"], ss["total"], False)
for st in sorted(set(sc["states"]) | set(ss["states"]), key=lambda s: -sc["states"][s]):
    row(f"  {st}", sc["states"][st], ss["states"][st], False)
all_same = row("TCP sockets held by a process", sc["held"], ss["held"], True)
all_same &= row("distinct (pid, fd) owners", len(sc["pairs"]), len(ss["pairs"]), True)
all_same &= sc["pairs"] == ss["pairs"]
ok = row("  of them loadgen's sockets", sc["lg_held"], ss["lg_held"], True)
ok &= row("  of them loadgen's (pid, fd) owners", len(sc["lg_pairs"]), len(ss["lg_pairs"]), True)
ok &= sc["lg_pairs"] == ss["lg_pairs"]
if sc["pairs"] != ss["pairs"]:
    only_sc, only_ss = sc["pairs"] - ss["pairs"], ss["pairs"] - sc["pairs"]
    print(f"  owner sets differ: {len(only_sc)} only in sockscope {sorted(only_sc)[:5]}, "
          f"{len(only_ss)} only in ss {sorted(only_ss)[:5]}")
print("(machine-wide numbers can differ by sockets that other programs open or close, or that the")
print(" kernel drops, between the two reads; loadgen's cannot, with its churn paused)")

print()
print("targets:")
if ref and runs.get("sockscope snapshot --json"):
    m = statistics.median(t for t, _ in runs["sockscope snapshot --json"])
    rss = max(r for _, r in runs["sockscope snapshot --json"])
    print(f"  sockscope time <= 1/10 of ss -tanp:     {'PASS' if m <= ref / 10 else 'FAIL'}  "
          f"({m:.3f} s vs {ref:.3f} s: 1/{ref / m:.1f})")
    print(f"  sockscope peak RSS <= 150 MiB:          {'PASS' if rss <= 150 else 'FAIL'}  ({rss:.1f} MiB)")
print(f"  same held sockets and owners as ss:     {'PASS' if ok else 'FAIL'}  "
      f"(loadgen's; machine-wide: {'same' if all_same else 'different, see above'})")
busy = max(int(os.environ["BUSY_BEFORE"]), int(os.environ["BUSY_AFTER"]))
if busy > 10:
    print(f"note: other programs kept the CPUs {busy}% busy around the timed runs: timings are noisy")
PY

echo
echo "sockscope diagnose (2 s window) on this load, headlines:"
grep -E '^(CRITICAL|WARNING|info) |findings:|No problems' "$TMP/diagnose.txt" | cut -c1-160 || true
