#!/usr/bin/env bash
# sockscope performance benchmark.
#
#   sudo bench/run.sh [ROUNDS]        (default 5 rounds)
#
# Holds ~133k real TCP sockets on loopback with examples/loadgen (50k
# ESTABLISHED connections = 100k sockets, 10k CLOSE_WAIT, ~10k TIME_WAIT kept
# up by churning short connections, over 8 worker processes), then times
#
#   sockscope snapshot --json    ss -tanp    ss -tan    lsof -nPi    netstat -tanp
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
set -euo pipefail

ROUNDS=${1:-5}
NETSTAT_ROUNDS=${NETSTAT_ROUNDS:-2}
LOADGEN_ARGS=${LOADGEN_ARGS:-}
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [ROUNDS]   (ROUNDS: a positive integer, default 5)" >&2
    exit 2
fi
if ((EUID != 0)); then
    echo "bench: run as root: it sets sysctls, and owners are only all visible to root" >&2
    exit 1
fi
if ((BASH_VERSINFO[0] < 5)); then
    echo "bench: needs bash 5 (EPOCHREALTIME)" >&2
    exit 1
fi

cd "$(dirname "$0")/.."
say() { printf 'bench: %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------
missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v lsof >/dev/null || missing+=(lsof)
command -v ss >/dev/null || missing+=(iproute2)
command -v netstat >/dev/null || missing+=(net-tools)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    say "installing missing packages with apt-get: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- build -------------------------------------------------------------------
say "building sockscope and examples/loadgen (release)"
cargo build --release --bin sockscope --example loadgen
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
SOCKSCOPE=$TARGET_DIR/release/sockscope
LOADGEN=$TARGET_DIR/release/examples/loadgen

# --- sysctls and cleanup -----------------------------------------------------
TMP=$(mktemp -d /tmp/sockscope-bench.XXXXXX)
declare -A SAVED=()
LG_PID=

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $LG_PID ]] && kill -0 "$LG_PID" 2>/dev/null; then
        kill -TERM "$LG_PID" 2>/dev/null || true
        wait "$LG_PID" 2>/dev/null || true
    fi
    local key
    for key in "${!SAVED[@]}"; do
        sysctl -q -w "$key=${SAVED[$key]}" >/dev/null || say "could not restore $key=${SAVED[$key]}"
    done
    ((${#SAVED[@]})) && say "sysctls restored"
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# set_sysctl KEY VALUE: sets it for the run, remembering the old value.
set_sysctl() {
    local old
    old=$(sysctl -n "$1" | tr -s '\t ' ' ')
    if [[ $old != "$2" ]]; then
        SAVED[$1]=$old
        sysctl -q -w "$1=$2" >/dev/null
    fi
}
# raise_sysctl KEY MIN: sets it to MIN if it is lower.
raise_sysctl() {
    local old
    old=$(sysctl -n "$1")
    if ((old < $2)); then set_sysctl "$1" "$2"; fi
}
raise_sysctl net.core.somaxconn 65535
raise_sysctl net.ipv4.tcp_max_syn_backlog 65535
raise_sysctl net.ipv4.tcp_max_tw_buckets 262144
raise_sysctl net.ipv4.tcp_max_orphans 65536
# Loadgen's listeners use ports from 7700 up, below this range.
set_sysctl net.ipv4.ip_local_port_range "10000 64999"

# --- load --------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "starting loadgen $LOADGEN_ARGS"
# shellcheck disable=SC2086 # LOADGEN_ARGS is a list of arguments
"$LOADGEN" $LOADGEN_ARGS >"$TMP/loadgen.out" 2>"$TMP/loadgen.err" &
LG_PID=$!
for ((i = 0; i < 1200; i++)); do
    grep -q '^ready:' "$TMP/loadgen.out" && break
    if ! kill -0 "$LG_PID" 2>/dev/null; then
        say "loadgen failed:"
        cat "$TMP/loadgen.err" >&2
        exit 1
    fi
    sleep 0.1
done
if ! grep -q '^ready:' "$TMP/loadgen.out"; then
    say "loadgen not ready after 120 s"
    cat "$TMP/loadgen.err" >&2
    exit 1
fi
READY=$(grep '^ready:' "$TMP/loadgen.out")
say "loadgen $READY"

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

# --- timing ------------------------------------------------------------------
NAMES=("sockscope snapshot --json" "ss -tanp" "ss -tan" "lsof -nPi" "netstat -tanp")
# tool_cmd INDEX: sets CMD to the command line of tool INDEX.
tool_cmd() {
    case $1 in
    0) CMD=("$SOCKSCOPE" snapshot --json) ;;
    1) CMD=(ss -tanp) ;;
    2) CMD=(ss -tan) ;;
    3) CMD=(lsof -nPi) ;;
    4) CMD=(netstat -tanp) ;;
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
    if ((status != 0)); then
        say "warning: $name exited with status $status"
    fi
    read -r rss user sys < <(tail -n 1 "$TMP/time")
    printf '%s\t%d\t%s\t%s\t%s\n' "$name" $((${t1//[.,]/} - ${t0//[.,]/})) "$rss" "$user" "$sys" \
        >>"$TMP/results.tsv"
}

# TCP sockets on the machine right now, from /proc/net/sockstat{,6} (inuse + tw).
tcp_total() {
    awk '$1 == "TCP:" || $1 == "TCP6:" { for (i = 2; i < NF; i += 2) if ($i == "inuse" || $i == "tw") n += $(i + 1) }
         END { print n }' /proc/net/sockstat /proc/net/sockstat6
}

# cpu_busy: percent of CPU time not idle over the next 2 s (other programs,
# when nothing of ours runs).
cpu_busy() {
    local a b c d e f g h t1 i1 t2 i2
    read -r _ a b c d e f g h _ </proc/stat
    t1=$((a + b + c + d + e + f + g + h)) i1=$((d + e))
    sleep 2
    read -r _ a b c d e f g h _ </proc/stat
    t2=$((a + b + c + d + e + f + g + h)) i2=$((d + e))
    echo $((100 * ((t2 - t1) - (i2 - i1)) / (t2 - t1 > 0 ? t2 - t1 : 1)))
}

say "warm-up: one untimed run of each tool but netstat"
for i in 0 1 2 3; do
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
order = ["sockscope snapshot --json", "ss -tanp", "ss -tan", "lsof -nPi", "netstat -tanp"]
for name in order:
    if name not in runs:
        continue
    ts = [t for t, _ in runs[name]]
    rss = max(m for _, m in runs[name])
    m = statistics.median(ts)
    c = statistics.median(cpu[name])
    print(f"{name:<27} {len(ts):>4} {m:>9.3f} {min(ts):>7.3f} {max(ts):>7.3f}  {ratio(m):<13} {rss:>12.1f} {c:>6.2f}")
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
