# shellcheck shell=bash
# Setup shared by bench/run.sh and bench/monitor.sh. Sourced, not run:
#
#   bench_init               needs root and bash 5; cds to the repository
#   install_missing CMD=PKG...
#                            apt-get installs PKG for each CMD not found
#   cargo_target_dir         prints the build directory cargo uses here
#   build_release            release build of sockscope and examples/loadgen;
#                            sets SOCKSCOPE and LOADGEN (honours CARGO_TARGET_DIR)
#   build_baseline REV       release build of sockscope as of commit REV, from
#                            `git archive` into TMP, in TARGET/baseline (kept
#                            between runs, so its dependencies build once);
#                            sets BASELINE_SOCKSCOPE and BASELINE_NAME
#   bench_setup              TMP directory, cleanup trap, sysctls raised for
#                            the run and restored on exit
#   start_loadgen [ARGS]     starts loadgen with ARGS (one string, split on
#                            spaces), waits for its `ready:` line; sets LG_PID
#                            and READY
#   stop_loadgen             stops it (and so its children)
#   tcp_total                TCP sockets on the machine (sockstat inuse + tw)
#   cpu_busy                 % of CPU time not idle over the next 2 s
#
# ON_EXIT: names of functions the cleanup calls first (a script adds its own).

say() { printf 'bench: %s\n' "$*" >&2; }

# --- checks ------------------------------------------------------------------
bench_init() {
    if ((EUID != 0)); then
        echo "bench: run as root: it sets sysctls, and owners are only all visible to root" >&2
        exit 1
    fi
    if ((BASH_VERSINFO[0] < 5)); then
        echo "bench: needs bash 5 (EPOCHREALTIME)" >&2
        exit 1
    fi
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
}

# --- tools -------------------------------------------------------------------
# install_missing CMD=PKG...: CMD is a command name, or an absolute path that
# must be executable.
install_missing() {
    local pair cmd missing=()
    for pair in "$@"; do
        cmd=${pair%%=*}
        if [[ $cmd == /* ]]; then
            [[ -x $cmd ]] || missing+=("${pair#*=}")
        else
            command -v "$cmd" >/dev/null || missing+=("${pair#*=}")
        fi
    done
    if ((${#missing[@]})); then
        say "installing missing packages with apt-get: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# --- build -------------------------------------------------------------------
# The build directory cargo uses here (CARGO_TARGET_DIR honoured).
cargo_target_dir() {
    cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

build_release() {
    say "building sockscope and examples/loadgen (release)"
    cargo build --release --bin sockscope --example loadgen
    local target_dir
    target_dir=$(cargo_target_dir)
    SOCKSCOPE=$target_dir/release/sockscope
    LOADGEN=$target_dir/release/examples/loadgen
    # SOCKSCOPE_BIN: measure another build (say, the previous commit's)
    # under the same load and setup.
    if [[ -n ${SOCKSCOPE_BIN:-} ]]; then
        [[ -x $SOCKSCOPE_BIN ]] || { say "SOCKSCOPE_BIN=$SOCKSCOPE_BIN is not an executable"; exit 2; }
        SOCKSCOPE=$SOCKSCOPE_BIN
        say "measuring $SOCKSCOPE"
    fi
}

build_baseline() {
    local rev=$1 commit target_dir
    commit=$(git rev-parse --verify --quiet "$rev^{commit}") || {
        say "BASELINE=$rev is not a commit of this repository"
        exit 2
    }
    BASELINE_NAME=$(git rev-parse --short "$commit")
    target_dir=$(cargo_target_dir)
    say "building sockscope as of $BASELINE_NAME (release) to measure beside this build"
    mkdir -p "$TMP/baseline"
    git archive "$commit" | tar -x -C "$TMP/baseline"
    (cd "$TMP/baseline" && CARGO_TARGET_DIR=$target_dir/baseline cargo build --release --locked --bin sockscope)
    BASELINE_SOCKSCOPE=$TMP/baseline/sockscope
    cp "$target_dir/baseline/release/sockscope" "$BASELINE_SOCKSCOPE"
}

# Set here, used by the scripts that source this file.
# shellcheck disable=SC2034
SOCKSCOPE='' LOADGEN='' READY='' BASELINE_SOCKSCOPE='' BASELINE_NAME=''

# --- sysctls and cleanup -----------------------------------------------------
TMP=
declare -A SAVED=()
LG_PID=
ON_EXIT=()

stop_loadgen() {
    if [[ -n $LG_PID ]] && kill -0 "$LG_PID" 2>/dev/null; then
        kill -TERM "$LG_PID" 2>/dev/null || true
        wait "$LG_PID" 2>/dev/null || true
    fi
    LG_PID=
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local hook
    for hook in "${ON_EXIT[@]}"; do
        "$hook" || true
    done
    stop_loadgen
    local key
    for key in "${!SAVED[@]}"; do
        sysctl -q -w "$key=${SAVED[$key]}" >/dev/null || say "could not restore $key=${SAVED[$key]}"
    done
    ((${#SAVED[@]})) && say "sysctls restored"
    [[ -n $TMP ]] && rm -rf "$TMP"
    exit "$status"
}

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

bench_setup() {
    TMP=$(mktemp -d /tmp/sockscope-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    raise_sysctl net.core.somaxconn 65535
    raise_sysctl net.ipv4.tcp_max_syn_backlog 65535
    raise_sysctl net.ipv4.tcp_max_tw_buckets 262144
    raise_sysctl net.ipv4.tcp_max_orphans 65536
    # Loadgen's listeners use ports from 7700 up, below this range.
    set_sysctl net.ipv4.ip_local_port_range "10000 64999"
}

# --- load --------------------------------------------------------------------
# start_loadgen [ARGS]: ARGS is one string of loadgen arguments.
start_loadgen() {
    local args=${1:-} i
    say "starting loadgen $args"
    # shellcheck disable=SC2086 # args is a list of arguments
    "$LOADGEN" $args >"$TMP/loadgen.out" 2>"$TMP/loadgen.err" &
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
}

# --- machine -----------------------------------------------------------------
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
