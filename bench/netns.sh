#!/usr/bin/env bash
# What the other network namespaces cost sockscope, next to the host's load.
#
#   sudo bench/netns.sh [NAMESPACES] [SOCKETS_PER_NS]      (defaults 200 and 50)
#
# Holds loadgen's ~130k TCP sockets on the host (as bench/run.sh does), then
# NAMESPACES network namespaces named sockscope-bench-0.. (`ip netns add`),
# each with one idle process holding SOCKETS_PER_NS sockets on its loopback
# (bench/netns_load.py), and measures:
#
#   (a) examples/netns_cost: CPU time (user + system) per full refresh of an
#       incremental collector as the monitor runs it above 20k sockets,
#       namespaces off and on, taking turns; first the host alone (before
#       the namespaces exist), then back to back (namespace tables reused
#       while their counters stand still: what the monitor and serve pay
#       per refresh), then cold (a new collector each refresh, so every
#       namespace is dumped, as a first refresh or snapshot), then busy
#       (every namespace's process sends a byte every 0.2 s, so its counters
#       move and its table cannot be reused: 200 containers with traffic),
#       then with the host busy (idle namespaces, but a host server whose
#       connections come and go: the machine-wide TCP figures in every
#       namespace's sockstat move),
#       and the pieces: one namespace's dump, its counters' read, the
#       discovery, the host's dump;
#   (b) `sockscope snapshot --json` against
#       `for ns in $(ip netns list | ours); do nsenter --net=/run/netns/$ns ss -tanp; done`
#       over the same namespaces, both to /dev/null, and checks that the
#       JSON has NAMESPACES x SOCKETS_PER_NS sockets in namespaces named
#       sockscope-bench-*.
#
# Needs root. Installs with apt-get, saying so, whichever of iproute2,
# util-linux (nsenter), python3, time is missing. Raises the sysctls
# bench/run.sh raises and restores them on exit; stops loadgen and deletes
# every namespace it made on exit, Ctrl-C or failure (only namespaces named
# sockscope-bench-* are ever touched).
#
# Environment:
#   REFRESHES         timed refreshes per mode and round, back to back (default 20)
#   ROUNDS            rounds of off/on taking turns, back to back (default 3)
#   SPACED_REFRESHES  timed cold refreshes per mode and round (default 5; 0 = skip)
#   SPACED_ROUNDS     (default 2)
#   BUSY_REFRESHES    timed refreshes per mode and round, namespaces busy
#                     (default 5; 0 = skip)
#   BUSY_ROUNDS       (default 2)
#   HOST_BUSY_REFRESHES  timed refreshes per mode and round, host busy
#                     (default 10; 0 = skip); rounds: BUSY_ROUNDS
#   SNAPSHOT_RUNS     timed `snapshot --json` runs (default 3)
#   SS_LOOP_RUNS      timed ss loops at most (default 3; 0 = skip); no more are
#                     started once SS_LOOP_MAX_S seconds (default 120) have gone
#                     into them (one loop takes about 1 s per namespace at 130k)
#   CHILD_EHASH       sets net.ipv4.tcp_child_ehash_entries (Linux 6.1+) to this
#                     before the namespaces are made, restored on exit: each
#                     namespace then has a TCP hash of its own instead of
#                     sharing the host's, and its dumps walk only its sockets
#   SETTLE_S          seconds to wait after loadgen is ready before measuring
#                     (default 65): its 10k orphaned FIN_WAIT2 sockets expire
#                     and its churner starts replacing TIME_WAIT sockets 60 s
#                     in, so the host's table is the same through every phase
#   LOADGEN_ARGS      extra loadgen arguments, as for bench/run.sh
#   CARGO_TARGET_DIR  honoured, as by cargo
set -euo pipefail

NAMESPACES=${1:-200}
PER_NS=${2:-50}
REFRESHES=${REFRESHES:-20}
ROUNDS=${ROUNDS:-3}
SPACED_REFRESHES=${SPACED_REFRESHES:-5}
SPACED_ROUNDS=${SPACED_ROUNDS:-2}
BUSY_REFRESHES=${BUSY_REFRESHES:-5}
BUSY_ROUNDS=${BUSY_ROUNDS:-2}
HOST_BUSY_REFRESHES=${HOST_BUSY_REFRESHES:-10}
SNAPSHOT_RUNS=${SNAPSHOT_RUNS:-3}
SS_LOOP_RUNS=${SS_LOOP_RUNS:-3}
SS_LOOP_MAX_S=${SS_LOOP_MAX_S:-120}
LOADGEN_ARGS=${LOADGEN_ARGS:-}
SETTLE_S=${SETTLE_S:-65}
PREFIX=sockscope-bench-
CHILD_EHASH=${CHILD_EHASH:-}
if ! [[ $SS_LOOP_RUNS =~ ^[0-9]+$ && $SPACED_REFRESHES =~ ^[0-9]+$ && $SPACED_ROUNDS =~ ^[1-9][0-9]*$ &&
    $BUSY_REFRESHES =~ ^[0-9]+$ && $BUSY_ROUNDS =~ ^[1-9][0-9]*$ && $CHILD_EHASH =~ ^[0-9]*$ &&
    $SETTLE_S =~ ^[0-9]+$ && $HOST_BUSY_REFRESHES =~ ^[0-9]+$ ]]; then
    echo "$0: SS_LOOP_RUNS, SPACED_REFRESHES, BUSY_REFRESHES, HOST_BUSY_REFRESHES, SETTLE_S: integers >= 0," \
        "SPACED_ROUNDS and BUSY_ROUNDS >= 1, CHILD_EHASH an integer" >&2
    exit 2
fi
for v in NAMESPACES PER_NS REFRESHES ROUNDS SNAPSHOT_RUNS; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "usage: $0 [NAMESPACES] [SOCKETS_PER_NS]   ($v: a positive integer, got '${!v}')" >&2
        exit 2
    fi
done
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
bench_init
# Two runs at once would share loadgen's addresses and ports and the
# namespaces' names. The lock goes with the last process holding it (loadgen
# and the namespaces' load inherit it).
exec {BENCH_LOCK}>/run/lock/sockscope-bench-netns.lock
if ! flock -n "$BENCH_LOCK"; then
    say "another bench/netns.sh is running (lock /run/lock/sockscope-bench-netns.lock): wait for it to end"
    exit 1
fi
install_missing ip=iproute2 ss=iproute2 nsenter=util-linux python3=python3 /usr/bin/time=time
build_release
say "building examples/netns_cost (release)"
cargo build --release --example netns_cost
NETNS_COST=$(dirname "$LOADGEN")/netns_cost
bench_setup

# --- the namespaces' load ----------------------------------------------------
# netns_load.py's stdin is a pipe this script holds (fd NL_FD): when the
# script ends, however it ends, the pipe closes and the load deletes its
# namespaces.
NL_FD=
NL_PID=
start_netns_load() {
    say "starting $NAMESPACES namespaces of $PER_NS sockets (bench/netns_load.py)"
    exec {NL_FD}> >(exec python3 bench/netns_load.py --namespaces "$NAMESPACES" \
        --sockets "$PER_NS" --prefix "$PREFIX" >"$TMP/netns_load.out" 2>"$TMP/netns_load.err")
    NL_PID=$!
    local i
    for ((i = 0; i < 1800; i++)); do
        grep -q '^ready:' "$TMP/netns_load.out" && break
        if ! kill -0 "$NL_PID" 2>/dev/null; then
            say "netns_load failed:"
            cat "$TMP/netns_load.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    if ! grep -q '^ready:' "$TMP/netns_load.out"; then
        say "netns_load not ready after 180 s"
        cat "$TMP/netns_load.err" >&2
        exit 1
    fi
    NL_READY=$(grep '^ready:' "$TMP/netns_load.out")
    say "netns_load $NL_READY"
}
stop_netns_load() {
    if [[ -n $NL_FD ]]; then
        exec {NL_FD}>&-
        NL_FD=
        local i
        for ((i = 0; i < 600; i++)); do
            kill -0 "$NL_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$NL_PID" 2>/dev/null; then
            say "netns_load still running after 60 s: SIGTERM"
            kill -TERM "$NL_PID" 2>/dev/null || true
            sleep 5
        fi
        [[ -s $TMP/netns_load.err ]] && sed 's/^/  /' "$TMP/netns_load.err" >&2
    fi
    # Whatever a killed load left behind (ours by name only).
    if ip netns list | awk -v p="$PREFIX" 'index($1, p) == 1 { found = 1 } END { exit !found }'; then
        python3 bench/netns_load.py --remove --prefix "$PREFIX" || true
    fi
}
ON_EXIT+=(stop_netns_load)
NL_READY=

our_namespaces() {
    ip netns list | awk -v p="$PREFIX" 'index($1, p) == 1 { print $1 }'
}

# --- host alone ----------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
python3 bench/netns_load.py --remove --prefix "$PREFIX"
start_loadgen "$LOADGEN_ARGS"
if ((SETTLE_S > 0)); then
    say "waiting ${SETTLE_S} s for loadgen's steady state (orphans expired, TIME_WAIT churn running)"
    sleep "$SETTLE_S"
fi
say "(a0) host alone: $REFRESHES refreshes, namespaces off"
BUSY_BEFORE=$(cpu_busy)
"$NETNS_COST" --modes off --rounds 1 --refreshes "$REFRESHES" --prefix "$PREFIX" | tee "$TMP/cost_host.txt" >&2

# --- with the namespaces -------------------------------------------------------
if [[ -n $CHILD_EHASH ]]; then
    [[ -e /proc/sys/net/ipv4/tcp_child_ehash_entries ]] ||
        { say "CHILD_EHASH: this kernel has no net.ipv4.tcp_child_ehash_entries (Linux 6.1+)"; exit 2; }
    say "namespaces made from now on get a TCP hash of their own: tcp_child_ehash_entries=$CHILD_EHASH"
    set_sysctl net.ipv4.tcp_child_ehash_entries "$CHILD_EHASH"
fi
start_netns_load
say "(a1) back to back: $ROUNDS rounds x $REFRESHES refreshes, off and on taking turns"
"$NETNS_COST" --rounds "$ROUNDS" --refreshes "$REFRESHES" --prefix "$PREFIX" --dump-one |
    tee "$TMP/cost_b2b.txt" >&2
if ((SPACED_REFRESHES > 0)); then
    say "(a2) cold (a new collector each refresh): $SPACED_ROUNDS rounds x $SPACED_REFRESHES refreshes, off and on"
    "$NETNS_COST" --cold --rounds "$SPACED_ROUNDS" --refreshes "$SPACED_REFRESHES" \
        --warmup 1 --prefix "$PREFIX" | tee "$TMP/cost_spaced.txt" >&2
fi
if ((BUSY_REFRESHES > 0)); then
    say "(a3) busy namespaces (a byte every 0.2 s in each): $BUSY_ROUNDS rounds x $BUSY_REFRESHES refreshes, off and on"
    kill -USR1 "$NL_PID" # chatter on
    sleep 1
    "$NETNS_COST" --rounds "$BUSY_ROUNDS" --refreshes "$BUSY_REFRESHES" --warmup 1 --prefix "$PREFIX" |
        tee "$TMP/cost_busy.txt" >&2
    kill -USR1 "$NL_PID" # chatter off
    sleep 1
fi
if ((HOST_BUSY_REFRESHES > 0)); then
    say "(a4) host busy (connections coming and going on the host): $BUSY_ROUNDS rounds x $HOST_BUSY_REFRESHES refreshes, off and on"
    kill -USR2 "$NL_PID" # host churn on
    sleep 1
    "$NETNS_COST" --rounds "$BUSY_ROUNDS" --refreshes "$HOST_BUSY_REFRESHES" --warmup 1 --prefix "$PREFIX" |
        tee "$TMP/cost_host_busy.txt" >&2
    kill -USR2 "$NL_PID" # host churn off
    sleep 1
fi

# --- snapshot --json against an ss loop ----------------------------------------
mapfile -t NS_LIST < <(our_namespaces)
# timed NAME CMD...: appends "name<TAB>wall_us<TAB>user_s<TAB>sys_s" to results.tsv.
timed() {
    local name=$1 t0 t1 user sys
    shift
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%U %S' -o "$TMP/time" "$@" >/dev/null 2>>"$TMP/stderr.log"
    t1=$EPOCHREALTIME
    read -r user sys < <(tail -n 1 "$TMP/time")
    printf '%s\t%d\t%s\t%s\n' "$name" $((${t1//[.,]/} - ${t0//[.,]/})) "$user" "$sys" \
        >>"$TMP/results.tsv"
}
say "(b) snapshot --json (untimed, kept for the check)"
"$SOCKSCOPE" snapshot --json >"$TMP/snapshot.json" 2>>"$TMP/stderr.log"
: >"$TMP/results.tsv"
SS_SPENT=0
SS_DONE=0
for ((r = 0; r < SNAPSHOT_RUNS || (SS_DONE < SS_LOOP_RUNS && SS_SPENT < SS_LOOP_MAX_S); r++)); do
    if ((r < SNAPSHOT_RUNS)); then
        say "(b) sockscope snapshot --json, run $((r + 1))"
        timed "sockscope snapshot --json" "$SOCKSCOPE" snapshot --json
    fi
    if ((SS_DONE < SS_LOOP_RUNS && SS_SPENT < SS_LOOP_MAX_S)); then
        say "(b) nsenter ss -tanp loop over ${#NS_LIST[@]} namespaces, run $((SS_DONE + 1))"
        # /usr/bin/time on a bash running the loop: its CPU includes the
        # children's (nsenter, ss).
        NS_LIST_STR="${NS_LIST[*]}" timed "nsenter ss -tanp loop" bash -c \
            'for ns in $NS_LIST_STR; do nsenter --net="/run/netns/$ns" ss -tanp; done'
        SS_SPENT=$((SS_SPENT + $(tail -n 1 "$TMP/results.tsv" | cut -f2) / 1000000))
        SS_DONE=$((SS_DONE + 1))
    fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_AFTER=$(cpu_busy)
TCP_NOW=$(tcp_total)

# --- report ------------------------------------------------------------------
CHILD_EHASH_NOW=$(sysctl -n net.ipv4.tcp_child_ehash_entries 2>/dev/null || echo '-')
export CHILD_EHASH_NOW READY NL_READY LOAD_BEFORE LOAD_AFTER BUSY_BEFORE BUSY_AFTER NAMESPACES PER_NS PREFIX TCP_NOW
python3 - "$TMP" <<'PY'
import collections, json, os, re, statistics, sys

tmp = sys.argv[1]
env = os.environ
uname = os.uname()
print()
print(f"sockscope namespace benchmark: {uname.sysname} {uname.release}, {os.cpu_count()} CPUs, "
      f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB")
print(f"host load:       {env['READY']}")
print(f"namespace load:  {env['NL_READY']}  (net.ipv4.tcp_child_ehash_entries={env['CHILD_EHASH_NOW']}"
      f"{': 0 = they share the host TCP hash' if env['CHILD_EHASH_NOW'] == '0' else ''})")
print(f"TCP sockets on the machine at the end (sockstat inuse + tw, host namespace): {env['TCP_NOW']}")
print(f"load average before: {env['LOAD_BEFORE']}   after: {env['LOAD_AFTER']};   "
      f"CPU busy with other work in 2 s before: {env['BUSY_BEFORE']}%, after: {env['BUSY_AFTER']}%")

def figures(name):
    out = {}
    for line in open(f"{tmp}/{name}"):
        if line.startswith("figures:"):
            kv = dict(x.split("=", 1) for x in line.split()[1:])
            out[kv["namespaces"]] = kv
    return out

def section(title, name):
    print()
    print(title)
    for line in open(f"{tmp}/{name}"):
        if not line.startswith("figures:"):
            print("  " + line.rstrip("\n"))

section("(a0) host alone, before the namespaces exist:", "cost_host.txt")
section("(a1) with the namespaces, back to back:", "cost_b2b.txt")
if os.path.exists(f"{tmp}/cost_spaced.txt"):
    section("(a2) cold: a new collector each refresh (every namespace dumped each time, as a first refresh or snapshot):",
            "cost_spaced.txt")
if os.path.exists(f"{tmp}/cost_busy.txt"):
    section("(a3) busy: every namespace's process sends a byte every 0.2 s (no table can be reused), back to back:",
            "cost_busy.txt")
if os.path.exists(f"{tmp}/cost_host_busy.txt"):
    section("(a4) host busy: idle namespaces, a host server's connections coming and going, back to back:",
            "cost_host_busy.txt")

runs = collections.defaultdict(list)
for line in open(f"{tmp}/results.tsv"):
    name, us, user, sys_ = line.rstrip("\n").split("\t")
    runs[name].append((int(us) / 1e6, float(user) + float(sys_)))
print()
print(f"(b) over {env['NAMESPACES']} namespaces of {env['PER_NS']} sockets (and the host's load):")
print(f"  {'':<28} {'runs':>4} {'median s':>9} {'min s':>8} {'max s':>8} {'CPU s':>7}")
for name in ["sockscope snapshot --json", "nsenter ss -tanp loop"]:
    ts = [w for w, _ in runs[name]]
    if not ts:
        print(f"  {name:<28} {0:>4}  (skipped)")
        continue
    cs = [c for _, c in runs[name]]
    print(f"  {name:<28} {len(ts):>4} {statistics.median(ts):>9.3f} {min(ts):>8.3f} {max(ts):>8.3f} "
          f"{statistics.median(cs):>7.2f}")
snap = statistics.median(w for w, _ in runs["sockscope snapshot --json"])
loop = statistics.median(w for w, _ in runs["nsenter ss -tanp loop"]) if runs["nsenter ss -tanp loop"] else None
print("  (wall: bash's EPOCHREALTIME around /usr/bin/time; CPU s: user + system, median, of the")
print("   process and its waited-for children: for the loop, every nsenter and ss)")

# What snapshot --json saw of our namespaces.
prefix, expect_ns, per_ns = env["PREFIX"], int(env["NAMESPACES"]), int(env["PER_NS"])
data = json.load(open(f"{tmp}/snapshot.json"))
per = collections.Counter()
owned = 0
by_ns = collections.Counter()
for s in data:
    ns = s.get("netns") or ""
    by_ns[prefix + "*" if ns.startswith(prefix) else ns] += 1
    if ns.startswith(prefix):
        per[ns] += 1
        if s.get("owners"):
            owned += 1
ours = sum(per.values())
print()
print(f"  snapshot --json: {len(data)} sockets; by namespace: "
      + ", ".join(f"{k or '?'} {v}" for k, v in by_ns.most_common(6)))
print(f"  in namespaces named {prefix}*: {ours} sockets in {len(per)} namespaces "
      f"(per namespace {min(per.values(), default=0)}..{max(per.values(), default=0)}), "
      f"{owned} with an owner")

# Targets.
def get(name, mode, key):
    try:
        return float(figures(name)[mode][key])
    except (OSError, KeyError):
        return None
print()
print("targets:")
host = get("cost_host.txt", "off", "mean_cpu_ms")
off = get("cost_b2b.txt", "off", "mean_cpu_ms")
on = get("cost_b2b.txt", "on", "mean_cpu_ms")
s_off = get("cost_spaced.txt", "off", "mean_cpu_ms")
s_on = get("cost_spaced.txt", "on", "mean_cpu_ms")
b_off = get("cost_busy.txt", "off", "mean_cpu_ms")
b_on = get("cost_busy.txt", "on", "mean_cpu_ms")
h_off = get("cost_host_busy.txt", "off", "mean_cpu_ms")
h_on = get("cost_host_busy.txt", "on", "mean_cpu_ms")
def verdict(a, b):
    r = a / b - 1
    return f"{'PASS' if r <= 0.10 else 'FAIL'}  ({r * 100:+.1f}%: {a:.1f} vs {b:.1f} ms CPU per refresh, mean)"
print(f"  refresh <= +10%, back to back, namespaces on vs off:         {verdict(on, off)}")
print(f"  refresh <= +10%, back to back, namespaces on vs host alone:  {verdict(on, host)}")
if s_on is not None:
    print(f"  cold refresh (every namespace dumped), on vs off:            {verdict(s_on, s_off)}")
if b_on is not None:
    print(f"  refresh <= +10%, busy namespaces, on vs off:                 {verdict(b_on, b_off)}")
if h_on is not None:
    print(f"  refresh <= +10%, host busy, on vs off:                       {verdict(h_on, h_off)}")
if loop:
    ratio = snap / loop
    print(f"  snapshot --json <= 1/10 of the ss loop:                      "
          f"{'PASS' if ratio <= 0.1 else 'FAIL'}  ({snap:.3f} s vs {loop:.3f} s: 1/{1 / ratio:.0f})")
ok = ours == expect_ns * per_ns and len(per) == expect_ns
label = f"JSON has {expect_ns} x {per_ns} sockets in {prefix}*:"
print(f"  {label:<60} {'PASS' if ok else 'FAIL'}  ({ours} in {len(per)} namespaces)")
busy = max(int(env["BUSY_BEFORE"]), int(env["BUSY_AFTER"]))
if busy > 10:
    print(f"note: other programs kept the CPUs {busy}% busy around the runs: timings are noisy")
PY
